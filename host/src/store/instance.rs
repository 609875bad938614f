//! Element instances: one authenticated connection to a vendor account, the
//! unit every receipt and event belongs to.
//!
//! Instances have small integer ids (as in Cloud Elements, e.g. `20931`) and
//! a random bearer token generated here, never chosen by the client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::timestamp::serialize_rfc3339;

/// Bytes of randomness in an instance token.
const TOKEN_BYTES: usize = 32;

/// A stored element instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Instance {
    /// The instance id, assigned by the store and never reused.
    pub id: i64,
    /// The instance's bearer token: 32 random bytes, base64url without padding.
    pub token: String,
    /// The element (vendor plugin) this instance talks to, e.g. `connectwise`.
    pub element_key: String,
    /// A name chosen by the client.
    pub name: String,
    /// Free-form labels chosen by the client.
    pub tags: Vec<String>,
    /// Element and event settings exactly as given (values may be strings,
    /// numbers, booleans or nested JSON).
    pub configuration: Map<String, Value>,
    /// Whether events are collected and delivered for this instance.
    pub events_enabled: bool,
    /// Why delivery to this instance's callback is paused (e.g. the receiver
    /// answered 410 Gone); `None` while delivering.
    pub delivery_paused: Option<String>,
    /// When the instance was created.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the instance was last changed.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Moves up by one with every change: an update made with the version
    /// the caller read fails if someone changed the instance meanwhile.
    pub version: i64,
}

/// What a client supplies to create an instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewInstance {
    /// The element key, e.g. `connectwise`.
    pub element_key: String,
    /// A name for people.
    pub name: String,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Element and event settings, stored as given.
    pub configuration: Map<String, Value>,
    /// Whether events are on from the start.
    pub events_enabled: bool,
}

/// A change to an instance: each `Some` field replaces the stored value,
/// each `None` leaves it alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstancePatch {
    /// A new name.
    pub name: Option<String>,
    /// A new list of tags (replaces the old list).
    pub tags: Option<Vec<String>>,
    /// A new configuration (replaces the whole map; keys not given are gone).
    pub configuration: Option<Map<String, Value>>,
    /// Events on or off.
    pub events_enabled: Option<bool>,
    /// Pause delivery with a reason (`Some(Some(_))`) or resume it (`Some(None)`).
    pub delivery_paused: Option<Option<String>>,
    /// A signing key being replaced, kept signing until the given time.
    pub retire_signing_key: Option<(String, OffsetDateTime)>,
}

impl InstancePatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.tags.is_none()
            && self.configuration.is_none()
            && self.events_enabled.is_none()
            && self.delivery_paused.is_none()
            && self.retire_signing_key.is_none()
    }
}

impl InstancePatch {
    /// The new tags and configuration as the JSON text stored for them.
    pub(super) fn json_columns(&self) -> serde_json::Result<(Option<String>, Option<String>)> {
        let tags = self.tags.as_ref().map(serde_json::to_string).transpose()?;
        let configuration = self
            .configuration
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        Ok((tags, configuration))
    }
}

/// A fresh instance token from the thread's cryptographically secure
/// generator.
pub(super) fn generate_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; TOKEN_BYTES]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;
    use time::macros::datetime;

    #[test]
    fn tokens_are_43_url_safe_characters_and_distinct() {
        let tokens: HashSet<String> = (0..1000).map(|_| generate_token()).collect();
        assert_eq!(tokens.len(), 1000);
        for token in &tokens {
            assert_eq!(token.len(), 43);
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn instance_serializes_times_as_rfc3339() {
        let instance = Instance {
            id: 20931,
            token: "t".into(),
            element_key: "connectwise".into(),
            name: "Acme".into(),
            tags: vec!["prod".into()],
            configuration: json!({"event.notification.enabled": "true"})
                .as_object()
                .cloned()
                .unwrap(),
            events_enabled: true,
            delivery_paused: None,
            created_at: datetime!(2024-05-01 12:00:00 UTC),
            updated_at: datetime!(2024-05-01 12:30:00.5 UTC),
            version: 1,
        };
        let json = serde_json::to_value(&instance).unwrap();
        assert_eq!(json["id"], 20931);
        assert_eq!(json["created_at"], "2024-05-01T12:00:00Z");
        assert_eq!(json["updated_at"], "2024-05-01T12:30:00.5Z");
        assert_eq!(json["configuration"]["event.notification.enabled"], "true");
    }

    #[test]
    fn empty_patch_is_recognized() {
        assert!(InstancePatch::default().is_empty());
        let patch = InstancePatch {
            events_enabled: Some(false),
            ..InstancePatch::default()
        };
        assert!(!patch.is_empty());
    }
}
