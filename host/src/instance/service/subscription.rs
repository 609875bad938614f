//! When the instance service registers an instance at its vendor, and what
//! it records of it.
//!
//! An instance is *wanted* at its vendor when its element implements
//! subscription, the operator set the host's public URL, and its events
//! are on in webhooks mode. Then:
//!
//! - **creation** subscribes before the instance is announced: if the
//!   vendor refuses, the instance is deleted again and the write fails with
//!   [`WriteError::Vendor`] naming the vendor's answer — nothing is left
//!   behind, neither here nor at the vendor (the element removes what it
//!   registered before failing);
//! - **a change** unsubscribes what is registered when the instance is no
//!   longer wanted (events off, polling) or when a key the element reads
//!   changed (credentials, server) or the public URL moved, with the
//!   configuration it was registered with, and subscribes again when it is
//!   wanted and not registered. The change itself stands whatever the vendor says; a
//!   failure is recorded as `failed` with its message;
//! - **deletion** unsubscribes first; if that fails the instance is deleted
//!   all the same and the answer names what was left at the vendor.
//!
//! What is registered (the element's remembered state, the URL) and the
//! status are recorded with the instance in the store, without moving the
//! instance's version.

use serde_json::{Map, Value};

use super::{ConfiguredInstance, InstanceService, WriteError};
use crate::instance::vendor::{Subject, VendorLink};
use crate::instance::{EventSettings, PublicUrl, VendorType, WebhookAddress};
use crate::runtime::ElementDescription;
use crate::store::{Instance, StoreError, SubscriptionStatus, VendorSubscription};

/// What the service needs to register instances at vendors.
#[derive(Clone)]
pub(super) struct Vendors {
    /// The URL vendors reach this host at.
    pub(super) public_url: Option<PublicUrl>,
    /// The element calls.
    pub(super) link: VendorLink,
}

/// What a deletion left at the vendor.
#[derive(Debug, Default)]
pub struct Deleted {
    /// Whether an unsubscription was attempted, and its failure if it
    /// failed (what is still registered at the vendor).
    pub unsubscribed: Option<Result<(), String>>,
}

/// Why the subscription of an instance could not be run again.
#[derive(Debug, thiserror::Error)]
pub enum ResubscribeError {
    /// The instance cannot be registered at its vendor; says why.
    #[error("{0}")]
    NotPossible(String),
    /// The write around it failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The subject of a call about `instance` with `configuration`.
fn subject<'a>(instance: &'a Instance, configuration: &'a Map<String, Value>) -> Subject<'a> {
    Subject {
        id: instance.id,
        element_key: &instance.element_key,
        configuration,
    }
}

/// Whether a key the element reads changed between two configurations.
fn element_keys_changed(
    element: &ElementDescription,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> bool {
    element
        .config_keys
        .iter()
        .any(|key| before.get(&key.name) != after.get(&key.name))
}

/// A subscription record with `status`, `message` and what is registered.
fn record(
    status: SubscriptionStatus,
    message: Option<String>,
    registered: Option<(String, String)>,
) -> VendorSubscription {
    let (remembered, callback_url) = registered.unzip();
    VendorSubscription {
        status,
        message,
        remembered,
        callback_url,
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

impl InstanceService {
    /// Registers instances at their vendors from now on, reachable at
    /// `public_url` (without it nothing is registered), through `link`.
    pub fn with_vendors(mut self, public_url: Option<PublicUrl>, link: VendorLink) -> Self {
        self.vendors = Some(Vendors { public_url, link });
        self
    }

    /// The URL vendors reach this host at, if the operator set it.
    pub fn public_url(&self) -> Option<&PublicUrl> {
        self.vendors.as_ref().and_then(|v| v.public_url.as_ref())
    }

    /// The link and inbound URL for `instance` if it should be registered
    /// at its vendor with `settings`.
    fn wanted(
        &self,
        element: &ElementDescription,
        instance: &Instance,
        settings: &EventSettings,
    ) -> Option<(&VendorLink, String)> {
        let vendors = self.vendors.as_ref()?;
        let on = settings.enabled && settings.vendor_type == VendorType::Webhooks;
        if !(element.subscribes && on) {
            return None;
        }
        let public = vendors.public_url.as_ref()?;
        let url = WebhookAddress::of(&instance.element_key, instance.id, Some(public)).url?;
        Some((&vendors.link, url))
    }

    /// Records `subscription` for instance `id`.
    async fn keep(
        &self,
        id: i64,
        subscription: VendorSubscription,
    ) -> Result<Option<VendorSubscription>, StoreError> {
        let written = self.store.put_subscription(id, subscription).await?;
        if !written {
            return Ok(None);
        }
        self.store.subscription(id).await
    }

    /// Subscribes a just-created instance if it is wanted at its vendor.
    /// On a refusal the instance is deleted again and the error names the
    /// vendor's answer.
    pub(super) async fn subscribe_created(
        &self,
        element: &ElementDescription,
        created: &Instance,
        settings: &EventSettings,
    ) -> Result<Option<VendorSubscription>, WriteError> {
        let Some((link, url)) = self.wanted(element, created, settings) else {
            return Ok(None);
        };
        let subject = subject(created, &created.configuration);
        match link.subscribe(&subject, &url, None).await {
            Ok(remembered) => {
                let kept = record(
                    SubscriptionStatus::Subscribed,
                    None,
                    Some((remembered, url)),
                );
                Ok(self.keep(created.id, kept).await?)
            }
            Err(refused) => {
                self.store.delete_instance(created.id).await?;
                tracing::info!(
                    instance = created.id,
                    "instance removed again: the vendor refused its subscription"
                );
                Err(WriteError::Vendor(refused))
            }
        }
    }

    /// Brings the vendor side of an instance in line with a change from
    /// `before` to `after`; the outcome is recorded, never a failure of
    /// the change.
    pub(super) async fn resubscribe_changed(
        &self,
        element: &ElementDescription,
        before: &ConfiguredInstance,
        after: &ConfiguredInstance,
    ) -> Result<Option<VendorSubscription>, StoreError> {
        if !element.subscribes || self.vendors.is_none() {
            return Ok(None);
        }
        let id = after.id();
        let stored = self.store.subscription(id).await?;
        let registered = stored
            .as_ref()
            .and_then(|s| s.remembered.clone().zip(s.callback_url.clone()));
        let wanted = self.wanted(element, &after.instance, &after.settings);
        // A key the element reads changed, or the host's public URL moved
        // since the registration.
        let moved = matches!((&registered, &wanted), (Some((_, at)), Some((_, url))) if at != url);
        let changed = moved
            || element_keys_changed(
                element,
                &before.instance.configuration,
                &after.instance.configuration,
            );
        let failed_before = stored
            .as_ref()
            .is_some_and(|s| s.status == SubscriptionStatus::Failed);
        if registered.is_some() && wanted.is_some() && !changed && !failed_before {
            return Ok(stored);
        }
        if registered.is_none() && wanted.is_none() {
            if stored.is_none() {
                return Ok(None);
            }
            return self
                .keep(id, record(SubscriptionStatus::NotSubscribed, None, None))
                .await;
        }
        let mut left_behind = None;
        if let Some((remembered, _)) = &registered {
            let link = &self.vendors.as_ref().expect("checked above").link;
            let old = subject(&before.instance, &before.instance.configuration);
            if let Err(failed) = link.unsubscribe(&old, remembered).await {
                left_behind = Some(format!(
                    "unsubscribing failed, left at the vendor: {failed}"
                ));
            }
        }
        let outcome = match wanted {
            None => match left_behind {
                None => record(SubscriptionStatus::NotSubscribed, None, None),
                Some(left) => record(SubscriptionStatus::Failed, Some(left), registered),
            },
            Some((link, url)) => {
                let new = subject(&after.instance, &after.instance.configuration);
                match link.subscribe(&new, &url, None).await {
                    Ok(remembered) => record(
                        SubscriptionStatus::Subscribed,
                        left_behind,
                        Some((remembered, url)),
                    ),
                    Err(refused) => {
                        let message = match left_behind {
                            Some(left) => format!("{refused}; {left}"),
                            None => refused,
                        };
                        record(SubscriptionStatus::Failed, Some(message), None)
                    }
                }
            }
        };
        self.keep(id, outcome).await
    }

    /// Unsubscribes an instance about to be deleted, if anything is
    /// registered for it.
    pub(super) async fn unsubscribe_deleted(
        &self,
        current: &ConfiguredInstance,
    ) -> Result<Deleted, StoreError> {
        let Some(vendors) = &self.vendors else {
            return Ok(Deleted::default());
        };
        let stored = self.store.subscription(current.id()).await?;
        let Some(remembered) = stored.and_then(|s| s.remembered) else {
            return Ok(Deleted::default());
        };
        let instance = &current.instance;
        let result = vendors
            .link
            .unsubscribe(&subject(instance, &instance.configuration), &remembered)
            .await;
        Ok(Deleted {
            unsubscribed: Some(result),
        })
    }

    /// Runs the subscription of instance `id` again: unsubscribes what is
    /// registered if the instance is no longer wanted at its vendor,
    /// otherwise subscribes it, handing the element what is registered so
    /// it leaves no duplicate. The outcome is recorded and returned.
    pub async fn resubscribe(&self, id: i64) -> Result<VendorSubscription, ResubscribeError> {
        let current = self.load(id).await.map_err(WriteError::from)?;
        let current = current.ok_or(WriteError::NotFound(id))?;
        let element = self.element(&current.instance.element_key)?;
        if !element.subscribes {
            return Err(ResubscribeError::NotPossible(format!(
                "element '{}' does not implement subscription: register {} at the vendor by hand",
                element.key,
                WebhookAddress::of(&element.key, id, self.public_url()).path
            )));
        }
        if self.public_url().is_none() {
            return Err(ResubscribeError::NotPossible(
                "the host's public URL is not set (public_url, PLUGBOARD_PUBLIC_URL), so there \
                 is no URL to register at the vendor"
                    .into(),
            ));
        }
        let stored = self
            .store
            .subscription(id)
            .await
            .map_err(WriteError::from)?;
        let remembered = stored.and_then(|s| s.remembered.zip(s.callback_url));
        let outcome = match self.wanted(&element, &current.instance, &current.settings) {
            Some((link, url)) => {
                let subject = subject(&current.instance, &current.instance.configuration);
                let previous = remembered.as_ref().map(|(r, _)| r.as_str());
                match link.subscribe(&subject, &url, previous).await {
                    Ok(new) => record(SubscriptionStatus::Subscribed, None, Some((new, url))),
                    Err(refused) => record(SubscriptionStatus::Failed, Some(refused), remembered),
                }
            }
            None => {
                let vendors = self.vendors.as_ref().expect("a public URL implies vendors");
                let subject = subject(&current.instance, &current.instance.configuration);
                match &remembered {
                    None => record(SubscriptionStatus::NotSubscribed, None, None),
                    Some((r, _)) => match vendors.link.unsubscribe(&subject, r).await {
                        Ok(()) => record(SubscriptionStatus::NotSubscribed, None, None),
                        Err(failed) => record(SubscriptionStatus::Failed, Some(failed), remembered),
                    },
                }
            }
        };
        self.keep(id, outcome)
            .await
            .map_err(WriteError::from)?
            .ok_or(ResubscribeError::Write(WriteError::NotFound(id)))
    }
}
