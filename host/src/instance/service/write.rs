//! The writes of the instance service: create, change (with an expected
//! version, or read-merge-write retried on a conflict), delete, and the
//! pause of delivery after 410 Gone. Each one publishes its change.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{
    labels, ConfiguredInstance, Deleted, InstanceChange, InstanceService, WriteError, Written,
};
use crate::instance::{self, keys, ConfigError, EventSettings};
use crate::outbound::ALLOW_PRIVATE_SETTING;
use crate::runtime::ElementDescription;
use crate::store::{ErrorKind, InstancePatch, NewInstance};

/// Configuration key of the callback URL.
const CALLBACK_URL: &str = "event.notification.callback.url";
/// Configuration key of the events switch.
const ENABLED: &str = "event.notification.enabled";
/// Read-merge-write attempts before a change without an expected version
/// gives up to concurrent writers (answered 409).
const MERGE_ATTEMPTS: u32 = 10;

/// A new instance.
#[derive(Clone, Debug, Default)]
pub struct InstanceDraft {
    /// The element key (or an alias).
    pub element_key: String,
    /// Its name; the element key when `None`.
    pub name: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its configuration, stored as given.
    pub configuration: Map<String, Value>,
}

/// A change to an instance; what is `None` stays as it is.
#[derive(Clone, Debug, Default)]
pub struct Edit {
    /// A new name.
    pub name: Option<String>,
    /// A new tag list.
    pub tags: Option<Vec<String>>,
    /// Configuration keys to set (a `null` value removes the key), merged
    /// into the configuration current at the time of writing.
    pub configuration: Option<Map<String, Value>>,
    /// Events on or off (`event.notification.enabled`); switching them on
    /// also resumes a delivery paused by 410 Gone.
    pub events: Option<bool>,
}

impl Edit {
    /// The configuration `current` becomes with this edit.
    fn merged(&self, current: &Map<String, Value>) -> Map<String, Value> {
        let mut out = current.clone();
        for (k, v) in self.configuration.iter().flatten() {
            if v.is_null() {
                out.remove(k);
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
        if let Some(on) = self.events {
            out.insert(ENABLED.into(), Value::Bool(on));
        }
        out
    }

    /// The configuration keys this edit sets.
    fn keys_set(&self) -> impl Iterator<Item = &String> {
        self.configuration
            .iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
    }
}

impl InstanceService {
    pub(super) fn element(&self, key: &str) -> Result<ElementDescription, WriteError> {
        (self.elements)(key).ok_or_else(|| {
            ConfigError::field(
                "element.key",
                format!("no element plugin '{key}' is loaded"),
            )
            .into()
        })
    }

    /// Refuses a callback URL the outbound policy would refuse at every
    /// delivery without even resolving it.
    fn deliverable(&self, settings: &EventSettings) -> Result<(), ConfigError> {
        let Some(host) = settings.callback_url.as_ref().and_then(url::Url::host) else {
            return Ok(());
        };
        self.policy.check_unresolved(&host).map_err(|denial| {
            ConfigError::new(
                CALLBACK_URL,
                format!(
                    "{denial}, so every delivery to it would be refused; the operator can allow \
                     it by listing it in {ALLOW_PRIVATE_SETTING} (outbound_allow_private)"
                ),
            )
        })
    }

    fn warn(element: &ElementDescription, id: i64, warnings: &[instance::KeyWarning]) {
        for w in warnings {
            tracing::warn!(instance = id, element = %element.key, field = %w.field, suggestion = ?w.suggestion, "configuration key nobody reads");
        }
    }

    /// Creates an instance.
    pub async fn create(&self, draft: InstanceDraft) -> Result<Written, WriteError> {
        let element = self.element(draft.element_key.trim())?;
        labels::check(draft.name.as_deref(), Some(&draft.tags))?;
        let settings = instance::validate(&element, &draft.configuration)?;
        self.deliverable(&settings)?;
        let warnings = keys::unknown(&element, &draft.configuration, draft.configuration.keys());
        let created = self
            .store
            .create_instance(NewInstance {
                element_key: element.key.clone(),
                name: draft.name.unwrap_or_else(|| element.key.clone()),
                tags: draft.tags,
                configuration: draft.configuration,
                events_enabled: settings.enabled,
            })
            .await?;
        let subscription = self
            .subscribe_created(&element, &created, &settings)
            .await?;
        tracing::info!(instance = created.id, element = %created.element_key, "instance created");
        Self::warn(&element, created.id, &warnings);
        let configured = Arc::new(ConfiguredInstance {
            instance: created,
            settings,
        });
        self.published(InstanceChange {
            id: configured.id(),
            version: Some(configured.version()),
        })
        .await;
        Ok(Written {
            instance: configured,
            warnings,
            subscription,
        })
    }

    /// Changes instance `id`. With `expected`, only if it is still at that
    /// version ([`WriteError::Stale`] otherwise); without, the edit is
    /// merged into the current configuration and written with the version
    /// it was merged into, again on a conflict, a few times.
    pub async fn update(
        &self,
        id: i64,
        expected: Option<i64>,
        edit: Edit,
    ) -> Result<Written, WriteError> {
        labels::check(edit.name.as_deref(), edit.tags.as_deref())?;
        for attempt in 0..MERGE_ATTEMPTS {
            if attempt > 0 {
                // Spread the writers that collided so they do not collide again.
                let jitter = rand::random_range(1..=5 * u64::from(attempt));
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            let current = self.load(id).await?.ok_or(WriteError::NotFound(id))?;
            if let Some(expected) = expected.filter(|v| *v != current.version()) {
                return Err(WriteError::Stale {
                    id,
                    expected,
                    found: current.version(),
                });
            }
            match self.try_update(&current, &edit).await {
                Err(WriteError::Store(e)) if e.kind() == ErrorKind::Conflict => {
                    if let Some(expected) = expected {
                        let found = self.load(id).await?.ok_or(WriteError::NotFound(id))?;
                        return Err(WriteError::Stale {
                            id,
                            expected,
                            found: found.version(),
                        });
                    }
                    tracing::debug!(instance = id, "instance changed meanwhile; merging again");
                }
                done => return done,
            }
        }
        Err(WriteError::Busy(id))
    }

    /// One attempt of [`InstanceService::update`] on `current`.
    async fn try_update(
        &self,
        current: &ConfiguredInstance,
        edit: &Edit,
    ) -> Result<Written, WriteError> {
        let id = current.id();
        let element = self.element(&current.instance.element_key)?;
        let configuration = edit.merged(&current.instance.configuration);
        let settings = instance::validate(&element, &configuration)?;
        if configuration.get(CALLBACK_URL) != current.instance.configuration.get(CALLBACK_URL) {
            self.deliverable(&settings)?;
        }
        let retire_signing_key = current
            .settings
            .signature_key
            .clone()
            .filter(|old| settings.signature_key.as_ref() != Some(old))
            .map(|old| (old, time::OffsetDateTime::now_utc() + self.key_grace));
        let resume = edit.events == Some(true) && current.instance.delivery_paused.is_some();
        let patch = InstancePatch {
            name: edit.name.clone(),
            tags: edit.tags.clone(),
            configuration: Some(configuration),
            events_enabled: Some(settings.enabled),
            delivery_paused: resume.then_some(None),
            retire_signing_key,
        };
        let updated = self
            .store
            .update_instance_at(id, current.version(), patch)
            .await?
            .ok_or(WriteError::NotFound(id))?;
        if resume {
            tracing::info!(instance = id, "delivery resumed");
        }
        let warnings = keys::unknown(&element, &updated.configuration, edit.keys_set());
        Self::warn(&element, id, &warnings);
        let configured = Arc::new(ConfiguredInstance {
            instance: updated,
            settings,
        });
        let subscription = self
            .resubscribe_changed(&element, current, &configured)
            .await?;
        self.published(InstanceChange {
            id,
            version: Some(configured.version()),
        })
        .await;
        Ok(Written {
            instance: configured,
            warnings,
            subscription,
        })
    }

    /// Deletes instance `id` with everything it received, after removing
    /// what is registered for it at its vendor (deleted all the same if
    /// that fails: the answer says what was left there); `None` if there
    /// was no such instance.
    pub async fn delete(&self, id: i64) -> Result<Option<Deleted>, WriteError> {
        let Some(current) = self.load(id).await? else {
            return Ok(None);
        };
        let unsubscribed = self.unsubscribe_deleted(&current).await?;
        let deleted = self.store.delete_instance(id).await?;
        if !deleted {
            return Ok(None);
        }
        tracing::info!(instance = id, "instance deleted");
        self.published(InstanceChange { id, version: None }).await;
        Ok(Some(unsubscribed))
    }

    /// Pauses delivery to instance `id` for `reason` (its receiver answered
    /// 410 Gone) until events are switched on again.
    pub async fn pause_delivery(&self, id: i64, reason: String) -> Result<(), WriteError> {
        let patch = InstancePatch {
            delivery_paused: Some(Some(reason)),
            ..InstancePatch::default()
        };
        let paused = self
            .store
            .update_instance(id, patch)
            .await?
            .ok_or(WriteError::NotFound(id))?;
        self.published(InstanceChange {
            id,
            version: Some(paused.version),
        })
        .await;
        Ok(())
    }
}
