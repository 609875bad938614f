//! What an instance has registered at its vendor: the state of its vendor
//! subscription, kept beside the instance (one row per instance, gone with
//! it) and written without moving the instance's version, so recording
//! the outcome of a subscription never makes a client's `If-Match` stale.

use serde::Serialize;
use time::OffsetDateTime;

use super::error::{Result, StoreError};
use super::timestamp::serialize_rfc3339;

/// Where an instance's vendor subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// The element registered the instance's inbound URL at the vendor.
    Subscribed,
    /// The last subscribe or unsubscribe failed; the message says how.
    Failed,
    /// Nothing is registered (events off, polling, or no public URL).
    NotSubscribed,
    /// The element does not implement subscription: the URL is registered
    /// at the vendor by hand.
    Unsupported,
}

impl SubscriptionStatus {
    /// The name stored and shown, e.g. `not_subscribed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribed => "subscribed",
            Self::Failed => "failed",
            Self::NotSubscribed => "not_subscribed",
            Self::Unsupported => "unsupported",
        }
    }

    /// The status stored as `name`.
    pub(super) fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "subscribed" => Self::Subscribed,
            "failed" => Self::Failed,
            "not_subscribed" => Self::NotSubscribed,
            "unsupported" => Self::Unsupported,
            other => {
                return Err(StoreError::corrupt(format!(
                    "unknown subscription status {other:?}"
                )))
            }
        })
    }
}

/// An instance's vendor subscription as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorSubscription {
    /// Where it stands.
    pub status: SubscriptionStatus,
    /// Why it failed, or what an unsubscription left behind at the vendor.
    pub message: Option<String>,
    /// What the element asked the host to remember of what is registered
    /// at the vendor (e.g. the vendor's callback ids), handed back to it to
    /// unsubscribe; `None` when nothing is registered.
    #[serde(skip)]
    pub remembered: Option<String>,
    /// The inbound URL registered at the vendor.
    pub callback_url: Option<String>,
    /// When this state was recorded.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub updated_at: OffsetDateTime,
}
