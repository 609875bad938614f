//! Checks on the URL and headers of a request, made before any connection.
//!
//! URLs are parsed once, with the `url` crate, and the request is then sent to exactly the
//! URL that was checked (re-serialized), so the host the policy judged is the host hyper
//! connects to.

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use url::{Host, Url};

use super::error::FetchError;

/// Which schemes a kind of request may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Schemes {
    /// Deliveries and polling: plain HTTP is the operator's choice.
    HttpOrHttps,
    /// Plugin fetches: the URL comes from untrusted input, so only HTTPS.
    HttpsOnly,
}

/// Parses `text` and applies the rules every outbound URL obeys: an allowed scheme, a
/// host, no userinfo and no fragment.
pub(super) fn check_url(text: &str, schemes: Schemes) -> Result<Url, FetchError> {
    let url = Url::parse(text)
        .map_err(|err| FetchError::InvalidRequest(format!("url is not valid: {err}")))?;
    match (schemes, url.scheme()) {
        (_, "https") | (Schemes::HttpOrHttps, "http") => {}
        (Schemes::HttpsOnly, other) => {
            return Err(FetchError::Denied(format!(
                "scheme {other} is not allowed (https only)"
            )))
        }
        (Schemes::HttpOrHttps, other) => {
            return Err(FetchError::Denied(format!(
                "scheme {other} is not allowed (http or https only)"
            )))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Denied("userinfo is not allowed".into()));
    }
    if url.fragment().is_some() {
        return Err(FetchError::Denied("fragment is not allowed".into()));
    }
    host_of(&url)?;
    Ok(url)
}

/// The host of a checked URL.
pub(super) fn host_of(url: &Url) -> Result<Host<&str>, FetchError> {
    url.host()
        .ok_or_else(|| FetchError::InvalidRequest("url has no host".into()))
}

/// The checked URL as the URI hyper sends.
pub(super) fn to_uri(url: &Url) -> Result<Uri, FetchError> {
    url.as_str()
        .parse()
        .map_err(|err| FetchError::InvalidRequest(format!("url is not a valid request URI: {err}")))
}

/// Headers the host manages itself; a plugin setting them could change the request's
/// target or framing.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "expect",
    "host",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Builds the header map of a plugin fetch. Errors name the header, never its value.
pub(super) fn plugin_headers(headers: &[(String, String)]) -> Result<HeaderMap, FetchError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            FetchError::InvalidRequest(format!("header name {name:?} is not valid"))
        })?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(FetchError::Denied(format!(
                "header {header} is not allowed"
            )));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            FetchError::InvalidRequest(format!("value of header {header} is not valid"))
        })?;
        map.append(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(text: &str, schemes: Schemes) -> String {
        match check_url(text, schemes) {
            Err(FetchError::Denied(message)) => message,
            other => panic!("{text}: expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn scheme_rules_depend_on_the_kind_of_request() {
        assert_eq!(
            denied("http://example.com/", Schemes::HttpsOnly),
            "scheme http is not allowed (https only)"
        );
        assert_eq!(
            denied("ftp://example.com/", Schemes::HttpOrHttps),
            "scheme ftp is not allowed (http or https only)"
        );
        assert!(check_url("http://example.com/", Schemes::HttpOrHttps).is_ok());
        assert!(check_url("https://example.com/", Schemes::HttpsOnly).is_ok());
    }

    #[test]
    fn userinfo_and_fragments_are_refused() {
        for text in ["https://user@example.com/", "https://:pw@example.com/"] {
            assert_eq!(denied(text, Schemes::HttpsOnly), "userinfo is not allowed");
        }
        assert_eq!(
            denied("https://example.com/#x", Schemes::HttpsOnly),
            "fragment is not allowed"
        );
    }

    #[test]
    fn relative_and_hostless_urls_are_invalid() {
        for text in ["/relative", "", "mailto:a@example.com"] {
            let err = check_url(text, Schemes::HttpOrHttps).unwrap_err();
            assert!(
                matches!(err, FetchError::InvalidRequest(_) | FetchError::Denied(_)),
                "{text}: {err:?}"
            );
        }
        assert!(matches!(
            check_url("/relative", Schemes::HttpOrHttps),
            Err(FetchError::InvalidRequest(_))
        ));
    }

    #[test]
    fn checked_urls_become_normalized_uris() {
        let url = check_url("https://EXAMPLE.com:443/a b?q=1", Schemes::HttpsOnly).unwrap();
        assert_eq!(to_uri(&url).unwrap(), "https://example.com/a%20b?q=1");
        let url = check_url("http://0x7f.1/", Schemes::HttpOrHttps).unwrap();
        assert_eq!(to_uri(&url).unwrap().host(), Some("127.0.0.1"));
    }

    #[test]
    fn plugin_headers_keep_order_and_refuse_reserved_names() {
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        let map =
            plugin_headers(&[pair("Accept", "a/b"), pair("x-k", "1"), pair("x-k", "2")]).unwrap();
        assert_eq!(map.get_all("x-k").iter().count(), 2);
        assert_eq!(map["accept"], "a/b");

        let err = plugin_headers(&[pair("Host", "internal")]).unwrap_err();
        assert_eq!(err, FetchError::Denied("header host is not allowed".into()));
        let err = plugin_headers(&[pair("bad name", "x")]).unwrap_err();
        assert!(matches!(err, FetchError::InvalidRequest(_)));
        let err = plugin_headers(&[pair("authorization", "secret\n")]).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
