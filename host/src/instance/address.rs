//! Where a vendor sends an instance's webhooks, in the two forms of SPEC §2:
//! `POST /events/{elementKey}/{base64(instanceId)}`, or
//! `POST /events/{elementKey}` with an `Element-Instances: {instanceId}`
//! header. Building the address ([`WebhookAddress::of`], shown by the
//! management API and the console, and registered at vendors by elements
//! that implement subscription) and reading it back
//! ([`decode_instance_id`]) live side by side so they cannot disagree.
//! With the operator's [`PublicUrl`] the address is also an absolute URL.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Serialize;

/// The header naming the instance in the header form.
pub const INSTANCE_HEADER: &str = "Element-Instances";

/// The URL vendors reach this host at (`public_url`), checked once at
/// start-up: an absolute `http` or `https` URL without user info, query or
/// fragment; a path prefix (a reverse proxy's) is kept, without its
/// trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Checks `text`, naming what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| {
            format!(
                "{text:?} is not an absolute URL ({e}); expected e.g. https://hooks.example.com"
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{text:?} has scheme {}; expected http or https",
                url.scheme()
            ));
        }
        if url.host().is_none() {
            return Err(format!("{text:?} names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?} must not carry user info"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?} must not carry a query or fragment"));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The webhook address of one instance, as paths relative to wherever
/// vendors reach plugboard, and as an absolute URL when the operator set
/// [`PublicUrl`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAddress {
    /// `{public_url}/events/{elementKey}/{base64(instanceId)}`: what vendors
    /// call, and what elements that implement subscription register;
    /// `None` without a public URL.
    pub url: Option<String>,
    /// `/events/{elementKey}/{base64(instanceId)}`: the instance in the path.
    pub path: String,
    /// `/events/{elementKey}`: the instance in [`headers`](Self::headers).
    pub header_path: String,
    /// What the header form must carry: `{"Element-Instances": "<id>"}`.
    pub headers: std::collections::BTreeMap<&'static str, String>,
}

impl WebhookAddress {
    /// The address of instance `id` of element `element_key`, reached at
    /// `public` if the operator set it.
    pub fn of(element_key: &str, id: i64, public: Option<&PublicUrl>) -> Self {
        let header_path = format!("/events/{element_key}");
        let path = format!("{header_path}/{}", STANDARD.encode(id.to_string()));
        Self {
            url: public.map(|public| format!("{}{path}", public.as_str())),
            path,
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
    fn the_public_url_makes_the_address_absolute() {
        for given in ["https://hooks.example.com", "https://hooks.example.com/"] {
            let public = PublicUrl::parse(given).unwrap();
            let address = WebhookAddress::of("connectwise", 20931, Some(&public));
            assert_eq!(
                address.url.as_deref(),
                Some("https://hooks.example.com/events/connectwise/MjA5MzE=")
            );
        }
        let behind_proxy = PublicUrl::parse("http://10.0.0.5:8080/plugboard/").unwrap();
        assert_eq!(
            WebhookAddress::of("x", 1, Some(&behind_proxy))
                .url
                .as_deref(),
            Some("http://10.0.0.5:8080/plugboard/events/x/MQ==")
        );
    }

    #[test]
    fn a_public_url_must_be_absolute_http_without_extras() {
        for (given, complaint) in [
            ("hooks.example.com", "is not an absolute URL"),
            (
                "ftp://hooks.example.com",
                "has scheme ftp; expected http or https",
            ),
            (
                "https://user:pw@hooks.example.com",
                "must not carry user info",
            ),
            (
                "https://hooks.example.com/?a=1",
                "must not carry a query or fragment",
            ),
            (
                "https://hooks.example.com/#x",
                "must not carry a query or fragment",
            ),
        ] {
            let err = PublicUrl::parse(given).unwrap_err();
            assert!(err.contains(complaint), "{given}: {err}");
        }
    }

    #[test]
    fn builds_what_it_decodes_in_both_forms() {
        let address = WebhookAddress::of("connectwise", 20931, None);
        assert_eq!(address.path, "/events/connectwise/MjA5MzE=");
        assert_eq!(address.url, None);
        assert_eq!(address.header_path, "/events/connectwise");
        assert_eq!(address.headers[INSTANCE_HEADER], "20931");
        for id in [1, 9, 42, 1_000_003, i64::MAX] {
            let path = WebhookAddress::of("x", id, None).path;
            let encoded = path.rsplit('/').next().unwrap();
            assert_eq!(decode_instance_id(encoded), Some(id), "{path}");
        }
    }
}
