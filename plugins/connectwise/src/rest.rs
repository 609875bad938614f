//! Addresses of the ConnectWise Manage REST API.

use crate::bindings::plugboard::element::types::{ElementError, Header};
use crate::config::{
    Settings, CLIENT_ID, COMPANY, COMPANY_SHORT, PRIVATE_KEY, PRIVATE_KEY_ALIAS, PRIVATE_KEY_SHORT,
    PUBLIC_KEY, PUBLIC_KEY_ALIAS, PUBLIC_KEY_SHORT,
};
use crate::host::Host;

/// The path of the REST API below the site URL.
pub const API_PATH: &str = "/v4_6_release/apis/3.0";

/// The API base for a configured site URL: `https://` is assumed when no
/// scheme is given, a trailing slash is dropped, and [`API_PATH`] is appended
/// unless the URL already ends with it.
pub fn api_base(server_url: &str) -> String {
    let trimmed = server_url.trim().trim_end_matches('/');
    let mut base = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    if !base.ends_with(API_PATH) {
        base.push_str(API_PATH);
    }
    base
}

/// The headers of every REST call: Basic authentication
/// `{company}+{publicKey}:{privateKey}`, the `clientId` header when one is
/// configured, and `Accept: application/json`. Missing credentials are a
/// `bad-request` naming the key.
pub fn auth_headers(host: &impl Host, settings: Settings<'_>) -> Result<Vec<Header>, ElementError> {
    let company = settings.require_any(&[COMPANY, COMPANY_SHORT])?;
    let public_key = settings.require_any(&[PUBLIC_KEY, PUBLIC_KEY_ALIAS, PUBLIC_KEY_SHORT])?;
    let private_key = settings.require_any(&[PRIVATE_KEY, PRIVATE_KEY_ALIAS, PRIVATE_KEY_SHORT])?;
    let credentials =
        host.base64_encode(format!("{company}+{public_key}:{private_key}").as_bytes());
    let mut headers = vec![header("Authorization", format!("Basic {credentials}"))];
    if let Some(client_id) = settings.get(CLIENT_ID) {
        headers.push(header("clientId", client_id.to_owned()));
    }
    headers.push(header("Accept", "application/json".to_owned()));
    Ok(headers)
}

/// One header.
pub fn header(name: &str, value: String) -> Header {
    Header {
        name: name.to_owned(),
        value,
    }
}

/// A resource the element knows without configuration.
pub struct KnownResource {
    /// The resource name in a poll configuration, e.g. `tickets`.
    pub name: &'static str,
    /// Its path below the API base.
    pub path: &'static str,
    /// The object type of its events, as callbacks name it (`ticket`).
    pub object_type: &'static str,
}

/// The well-known resources; a polling instance that names no resources
/// polls all of them (see `config::default_poll_configuration`).
pub const KNOWN_RESOURCES: &[KnownResource] = &[
    KnownResource {
        name: "tickets",
        path: "/service/tickets",
        object_type: "ticket",
    },
    KnownResource {
        name: "companies",
        path: "/company/companies",
        object_type: "company",
    },
    KnownResource {
        name: "contacts",
        path: "/company/contacts",
        object_type: "contact",
    },
];

fn known(resource: &str) -> Option<&'static KnownResource> {
    KNOWN_RESOURCES.iter().find(|known| known.name == resource)
}

/// The REST path of a well-known resource name.
pub fn resource_path(resource: &str) -> Option<&'static str> {
    known(resource).map(|known| known.path)
}

/// The singular object type of a resource name (`tickets` → `ticket`);
/// unknown resources keep their name.
pub fn object_type(resource: &str) -> &str {
    known(resource).map_or(resource, |known| known.object_type)
}

/// The URL to poll for `resource`: the resource configuration's `url` when it
/// has one (joined to `base` when relative), else the well-known path.
pub fn resource_url(
    base: &str,
    resource: &str,
    configured: Option<&str>,
) -> Result<String, ElementError> {
    match configured {
        Some(url) if url.contains("://") => Ok(url.to_owned()),
        Some(path) => Ok(format!("{base}/{}", path.trim_start_matches('/'))),
        None => resource_path(resource)
            .map(|path| format!("{base}{path}"))
            .ok_or_else(|| {
                ElementError::BadRequest(format!(
                    "no REST path is known for resource `{resource}`: set `url` in its poll configuration"
                ))
            }),
    }
}

/// Percent-encodes a query component, keeping only RFC 3986 unreserved bytes.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_gets_scheme_and_api_path() {
        assert_eq!(
            api_base("api-na.myconnectwise.net"),
            "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"
        );
        assert_eq!(
            api_base(" https://api-eu.myconnectwise.net/ "),
            "https://api-eu.myconnectwise.net/v4_6_release/apis/3.0"
        );
        assert_eq!(
            api_base("http://cw.example.com:8443/v4_6_release/apis/3.0/"),
            "http://cw.example.com:8443/v4_6_release/apis/3.0"
        );
    }

    #[test]
    fn resources_resolve_to_urls() {
        let base = "https://h/v4_6_release/apis/3.0";
        assert_eq!(
            resource_url(base, "tickets", None).unwrap(),
            "https://h/v4_6_release/apis/3.0/service/tickets"
        );
        assert_eq!(
            resource_url(base, "contacts", None).unwrap(),
            "https://h/v4_6_release/apis/3.0/company/contacts"
        );
        assert_eq!(
            resource_url(base, "x", Some("/project/projects")).unwrap(),
            "https://h/v4_6_release/apis/3.0/project/projects"
        );
        assert_eq!(
            resource_url(base, "x", Some("project/projects")).unwrap(),
            "https://h/v4_6_release/apis/3.0/project/projects"
        );
        assert_eq!(
            resource_url(base, "x", Some("https://other/api/items")).unwrap(),
            "https://other/api/items"
        );
        assert!(matches!(
            resource_url(base, "projects", None),
            Err(ElementError::BadRequest(message)) if message.contains("`projects`")
        ));
    }

    #[test]
    fn object_types_are_singular() {
        assert_eq!(object_type("tickets"), "ticket");
        assert_eq!(object_type("companies"), "company");
        assert_eq!(object_type("contacts"), "contact");
        assert_eq!(object_type("projects"), "projects");
    }

    #[test]
    fn query_components_are_encoded() {
        assert_eq!(
            percent_encode("lastUpdated>[2024-01-01T00:00:00Z]"),
            "lastUpdated%3E%5B2024-01-01T00%3A00%3A00Z%5D"
        );
        assert_eq!(
            percent_encode("_info/lastUpdated asc"),
            "_info%2FlastUpdated%20asc"
        );
    }
}
