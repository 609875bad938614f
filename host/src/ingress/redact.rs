//! Which request headers the inbound log shows only as `[redacted]`.
//!
//! The rule (documented in the README): `Authorization`,
//! `Proxy-Authorization`, `Cookie` and `Set-Cookie`, and every header whose
//! name contains `signature`, `token`, `secret`, `key`, `hmac`, `auth`,
//! `password` or `session` (case-insensitive) — which covers the bundled
//! elements' signature headers (`x-content-signature`,
//! `x-hub-signature-256`, `x-shopify-hmac-sha256`, `linear-signature`).
//! Rejected requests are stored already redacted; receipts keep their
//! headers as received (reprocessing verifies the signature again) and are
//! redacted when shown.

/// What a redacted value is shown as.
pub const REDACTED: &str = "[redacted]";

const NAMES: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

const PARTS: &[&str] = &[
    "signature",
    "token",
    "secret",
    "key",
    "hmac",
    "auth",
    "password",
    "session",
];

/// Whether the value of header `name` is kept secret.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    NAMES.contains(&name.as_str()) || PARTS.iter().any(|p| name.contains(p))
}

/// `headers` with every secret value replaced by [`REDACTED`].
pub fn headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let v = if is_secret(n) { REDACTED } else { v.as_str() };
            (n.clone(), v.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_tokens_and_credentials_are_redacted() {
        let given: Vec<(String, String)> = [
            ("Authorization", "Bearer abc"),
            ("cookie", "sid=1"),
            ("x-content-signature", "c2ln"),
            ("X-Hub-Signature-256", "sha256=00"),
            ("x-shopify-hmac-sha256", "aGk="),
            ("x-api-key", "k"),
            ("x-webhook-token", "t"),
            ("content-type", "application/json"),
            ("user-agent", "ConnectWise"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let shown = headers(&given);
        let kept: Vec<&str> = shown
            .iter()
            .filter(|(_, v)| v != REDACTED)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(kept, ["content-type", "user-agent"]);
        assert_eq!(shown.len(), given.len());
    }
}
