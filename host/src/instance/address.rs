//! Where a vendor sends an instance's webhooks, in the two forms of SPEC §2:
//! `POST /events/{elementKey}/{base64(instanceId)}`, or
//! `POST /events/{elementKey}` with an `Element-Instances: {instanceId}`
//! header. Building the address ([`WebhookAddress::of`], shown by the
//! management API and the console) and reading it back
//! ([`decode_instance_id`]) live side by side so they cannot disagree.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Serialize;

/// The header naming the instance in the header form.
pub const INSTANCE_HEADER: &str = "Element-Instances";

/// The webhook address of one instance, as paths relative to wherever
/// vendors reach plugboard (only the operator knows that origin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAddress {
    /// `/events/{elementKey}/{base64(instanceId)}`: the instance in the path.
    pub path: String,
    /// `/events/{elementKey}`: the instance in [`headers`](Self::headers).
    pub header_path: String,
    /// What the header form must carry: `{"Element-Instances": "<id>"}`.
    pub headers: std::collections::BTreeMap<&'static str, String>,
}

impl WebhookAddress {
    /// The address of instance `id` of element `element_key`.
    pub fn of(element_key: &str, id: i64) -> Self {
        let header_path = format!("/events/{element_key}");
        Self {
            path: format!("{header_path}/{}", STANDARD.encode(id.to_string())),
            header_path,
            headers: [(INSTANCE_HEADER, id.to_string())].into(),
        }
    }
}

/// `base64(instanceId)` as in `/events/closeio/MjA5MzE=`; URL-safe and
/// unpadded forms are accepted too. Decoded strictly: the text inside must
/// be the id exactly as [`WebhookAddress::of`] writes it — decimal digits,
/// no sign, no leading zero, no whitespace — so one instance has one
/// address (`IDE=`, " 1", and `MQo=`, "1\n", name no instance).
pub fn decode_instance_id(encoded: &str) -> Option<i64> {
    let trimmed = encoded.trim_end_matches('=');
    let bytes = STANDARD
        .decode(encoded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let canonical = text.bytes().all(|b| b.is_ascii_digit())
        && !text.is_empty()
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_instance_ids_like_cloud_elements() {
        assert_eq!(decode_instance_id("MjA5MzE="), Some(20931));
        assert_eq!(decode_instance_id("MjA5MzE"), Some(20931));
        assert_eq!(decode_instance_id("not base64!"), None);
        assert_eq!(decode_instance_id("YWJj"), None); // "abc"
    }

    #[test]
    fn decodes_only_the_canonical_text_of_an_id() {
        for (encoded, text) in [
            ("IDE=", " 1"),
            ("MQo=", "1\n"),
            ("MSA=", "1 "),
            ("KzE=", "+1"),
            ("MDE=", "01"),
            ("LTE=", "-1"),
            ("", ""),
        ] {
            assert_eq!(STANDARD.encode(text), encoded);
            assert_eq!(decode_instance_id(encoded), None, "{text:?}");
        }
        assert_eq!(decode_instance_id("MQ=="), Some(1));
        assert_eq!(decode_instance_id("MQ"), Some(1));
    }

    #[test]
    fn builds_what_it_decodes_in_both_forms() {
        let address = WebhookAddress::of("connectwise", 20931);
        assert_eq!(address.path, "/events/connectwise/MjA5MzE=");
        assert_eq!(address.header_path, "/events/connectwise");
        assert_eq!(address.headers[INSTANCE_HEADER], "20931");
        for id in [1, 9, 42, 1_000_003, i64::MAX] {
            let path = WebhookAddress::of("x", id).path;
            let encoded = path.rsplit('/').next().unwrap();
            assert_eq!(decode_instance_id(encoded), Some(id), "{path}");
        }
    }
}
