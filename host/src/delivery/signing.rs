//! Signing notifications (SPEC §4), over the exact body bytes.
//!
//! - Cloud Elements: `Elements-Webhook-Signature: sha256=<base64 HMAC-SHA256(key, body)>`
//!   and `Elements-Webhook-Id`.
//! - Standard Webhooks v1: `webhook-id`, `webhook-timestamp` (unix seconds) and
//!   `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
//!   A secret of the form `whsec_<base64>` signs with the decoded bytes; any
//!   other key signs with its UTF-8 bytes.
//!
//! During a key rotation's grace period every signature is sent once per
//! key, newest first: space-separated in `webhook-signature` (as Standard
//! Webhooks specifies) and comma-separated in `Elements-Webhook-Signature`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The headers that sign one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `(name, value)` pairs to add to the request.
    pub headers: Vec<(&'static str, String)>,
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The HMAC key bytes of a signing key (`whsec_` secrets are base64).
pub fn key_bytes(key: &str) -> Vec<u8> {
    key.strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| key.as_bytes().to_vec())
}

/// Signs `body` for delivery `id` at unix time `timestamp` with `keys`
/// (current key first; may be empty: then only the id headers are sent).
pub fn sign(id: &str, timestamp: i64, body: &[u8], keys: &[&str]) -> SignatureHeaders {
    let ts = timestamp.to_string();
    let mut headers = vec![
        ("elements-webhook-id", id.to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.clone()),
    ];
    if !keys.is_empty() {
        let elements: Vec<String> = keys
            .iter()
            .map(|k| format!("sha256={}", hmac(k.as_bytes(), &[body])))
            .collect();
        let standard: Vec<String> = keys
            .iter()
            .map(|k| {
                format!(
                    "v1,{}",
                    hmac(
                        &key_bytes(k),
                        &[id.as_bytes(), b".", ts.as_bytes(), b".", body]
                    )
                )
            })
            .collect();
        headers.push(("elements-webhook-signature", elements.join(",")));
        headers.push(("webhook-signature", standard.join(" ")));
    }
    SignatureHeaders { headers }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(h: &'a SignatureHeaders, name: &str) -> Option<&'a str> {
        h.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn cloud_elements_signature_matches_a_known_value() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), base64.
        let h = sign(
            "evt",
            0,
            b"The quick brown fox jumps over the lazy dog",
            &["key"],
        );
        assert_eq!(
            header(&h, "elements-webhook-signature"),
            Some("sha256=97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=")
        );
        assert_eq!(header(&h, "elements-webhook-id"), Some("evt"));
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference implementations' tests.
        let body = br#"{"test": 2432232314}"#;
        let h = sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        );
        assert_eq!(
            header(&h, "webhook-signature"),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(header(&h, "webhook-timestamp"), Some("1614265330"));
    }

    #[test]
    fn rotation_sends_both_signatures_newest_first() {
        let h = sign("e", 1, b"{}", &["new", "old"]);
        let single_new = sign("e", 1, b"{}", &["new"]);
        let single_old = sign("e", 1, b"{}", &["old"]);
        let both = header(&h, "webhook-signature").unwrap();
        assert_eq!(
            both,
            format!(
                "{} {}",
                header(&single_new, "webhook-signature").unwrap(),
                header(&single_old, "webhook-signature").unwrap()
            )
        );
        assert_eq!(
            header(&h, "elements-webhook-signature")
                .unwrap()
                .split(',')
                .count(),
            2
        );
    }

    #[test]
    fn unsigned_deliveries_still_carry_ids() {
        let h = sign("e", 1, b"{}", &[]);
        assert!(header(&h, "elements-webhook-signature").is_none());
        assert_eq!(header(&h, "webhook-id"), Some("e"));
    }
}
