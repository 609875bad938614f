//! The element's identity and the instance configuration it understands.

use crate::bindings::plugboard::element::types::{
    ConfigKey, ElementError, ElementInfo, EventModes,
};
use crate::rest;

/// The ConnectWise site URL with the `api-` prefix, e.g. `https://api-na.myconnectwise.net`.
pub const SERVER_URL: &str = "helpdesk.connectwise.server.url";
/// The company id used to log in.
pub const COMPANY: &str = "helpdesk.connectwise.company";
/// The API member's public key.
pub const PUBLIC_KEY: &str = "helpdesk.connectwise.public.key";
/// Older name of [`PUBLIC_KEY`], accepted as an alias.
pub const PUBLIC_KEY_ALIAS: &str = "helpdesk.connectwise.username";
/// The API member's private key.
pub const PRIVATE_KEY: &str = "helpdesk.connectwise.private.key";
/// Older name of [`PRIVATE_KEY`], accepted as an alias.
pub const PRIVATE_KEY_ALIAS: &str = "helpdesk.connectwise.password";
/// Short name of [`COMPANY`] in the Cloud Elements parameter table, read
/// when the long name is empty.
pub const COMPANY_SHORT: &str = "company";
/// Short name of [`PUBLIC_KEY`] in the Cloud Elements parameter table.
pub const PUBLIC_KEY_SHORT: &str = "public.key";
/// Short name of [`PRIVATE_KEY`] in the Cloud Elements parameter table.
pub const PRIVATE_KEY_SHORT: &str = "private.key";
/// Cloud Elements' switch for filtering nulls out of API responses; kept
/// for configurations that carry it (notifications carry vendor values as sent).
pub const FILTER_NULLS: &str = "filter.response.nulls";
/// The integration's ConnectWise `clientId`, sent as a header on REST calls.
pub const CLIENT_ID: &str = "helpdesk.connectwise.client.id";
/// The WSDL path of the legacy SOAP API (kept for configurations that carry it).
pub const WSDL_PATH: &str = "helpdesk.connectwise.wsdl.path";
/// `"false"` turns off verification of `x-content-signature` on callbacks.
pub const VERIFY_SIGNATURE: &str = "connectwise.webhook.verify.signature";

/// The record types whose callbacks are registered for an instance,
/// comma-separated (default `ticket,company,contact`).
pub const CALLBACK_TYPES: &str = "connectwise.callback.types";
/// The level of the registered callbacks (default `owner`).
pub const CALLBACK_LEVEL: &str = "connectwise.callback.level";

/// ConnectWise's documented cloud API hosts, the only ones besides the
/// instance's own server (`helpdesk.connectwise.server.url`, which the host
/// adds per instance) that may serve a callback's signing key. Exact names:
/// a wildcard over the domain would let a callback name any subdomain.
pub const CLOUD_API_HOSTS: [&str; 6] = [
    "api-na.myconnectwise.net",
    "api-eu.myconnectwise.net",
    "api-au.myconnectwise.net",
    "api-aus.myconnectwise.net",
    "api-za.myconnectwise.net",
    "api-staging.connectwisedev.com",
];

/// Read access to one instance's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a>(&'a [(String, String)]);

impl<'a> Settings<'a> {
    /// Wraps the key/value pairs the host passed.
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Self(pairs)
    }

    /// The trimmed value of the first of `keys` that is set to a non-empty value.
    pub fn get_any(&self, keys: &[&str]) -> Option<&'a str> {
        keys.iter().find_map(|key| {
            self.0
                .iter()
                .filter(|(name, _)| name == key)
                .map(|(_, value)| value.trim())
                .find(|value| !value.is_empty())
        })
    }

    /// The trimmed, non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.get_any(&[key])
    }

    /// Like [`Settings::get_any`], but a missing value is a `bad-request`
    /// naming the first key.
    pub fn require_any(&self, keys: &[&str]) -> Result<&'a str, ElementError> {
        self.get_any(keys).ok_or_else(|| {
            ElementError::BadRequest(format!("configuration `{}` is missing", keys[0]))
        })
    }

    /// Whether inbound callbacks must carry a valid `x-content-signature`
    /// (on unless [`VERIFY_SIGNATURE`] is `"false"`).
    pub fn verify_signature(&self) -> bool {
        !self
            .get(VERIFY_SIGNATURE)
            .is_some_and(|value| value.eq_ignore_ascii_case("false"))
    }
}

/// Builds one [`ConfigKey`].
fn key(name: &str, required: bool, secret: bool, description: &str) -> ConfigKey {
    ConfigKey {
        name: name.to_owned(),
        required,
        secret,
        description: description.to_owned(),
    }
}

/// Who the element is and what it needs: the answer to `describe`.
pub fn element_info() -> ElementInfo {
    ElementInfo {
        key: "connectwise".to_owned(),
        aliases: vec!["connectwisecrmrest".to_owned()],
        name: "ConnectWise Manage".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        modes: EventModes::WEBHOOKS | EventModes::POLLING,
        config_keys: vec![
            key(
                SERVER_URL,
                true,
                false,
                "URL of your ConnectWise site with `api-` prepended, e.g. \
                 `https://api-na.myconnectwise.net`; `https://` is assumed when no scheme is given.",
            ),
            key(COMPANY, true, false, "The company id you log in with."),
            key(
                PUBLIC_KEY,
                false,
                true,
                "Public key of the API member; needed for polling. \
                 `helpdesk.connectwise.username` is accepted as an alias.",
            ),
            key(
                PRIVATE_KEY,
                false,
                true,
                "Private key of the API member; needed for polling. \
                 `helpdesk.connectwise.password` is accepted as an alias.",
            ),
            key(
                PUBLIC_KEY_ALIAS,
                false,
                true,
                "Older name of `helpdesk.connectwise.public.key` (the ConnectWise user name in \
                 the Cloud Elements guide); read when the public key is empty.",
            ),
            key(
                PRIVATE_KEY_ALIAS,
                false,
                true,
                "Older name of `helpdesk.connectwise.private.key` (the ConnectWise password in \
                 the Cloud Elements guide); read when the private key is empty.",
            ),
            key(
                COMPANY_SHORT,
                false,
                false,
                "Short name of `helpdesk.connectwise.company` in the Cloud Elements parameter \
                 table; read when the long name is empty (the long name is the required one).",
            ),
            key(
                PUBLIC_KEY_SHORT,
                false,
                true,
                "Short name of `helpdesk.connectwise.public.key`; read when neither long name is set.",
            ),
            key(
                PRIVATE_KEY_SHORT,
                false,
                true,
                "Short name of `helpdesk.connectwise.private.key`; read when neither long name is set.",
            ),
            key(
                FILTER_NULLS,
                false,
                false,
                "Cloud Elements' switch for filtering nulls out of API responses (default `true`); \
                 accepted for compatibility, no effect on notifications, which carry the \
                 vendor's values as sent.",
            ),
            key(
                CLIENT_ID,
                false,
                false,
                "Your integration's ConnectWise clientId, sent as the `clientId` header on REST calls.",
            ),
            key(
                WSDL_PATH,
                false,
                false,
                "WSDL path of the legacy SOAP API, e.g. `/v2017_2/apis/2.0/`; not used by REST.",
            ),
            key(
                VERIFY_SIGNATURE,
                false,
                false,
                "Whether callbacks must carry a valid `x-content-signature` (default `true`); \
                 `false` accepts unsigned callbacks and logs a warning on each.",
            ),
            key(
                CALLBACK_TYPES,
                false,
                false,
                "Record types whose callbacks plugboard registers at ConnectWise for the \
                 instance (when the host has a public URL), comma-separated; default \
                 `ticket,company,contact`.",
            ),
            key(
                CALLBACK_LEVEL,
                false,
                false,
                "Level of the registered callbacks (ConnectWise's `level`, with `objectId` 1); \
                 default `owner`: every record of the type.",
            ),
        ],
        fetch_hosts: CLOUD_API_HOSTS.iter().map(|&h| h.to_owned()).collect(),
        fetch_host_config_keys: vec![SERVER_URL.to_owned()],
        default_poll_configuration: Some(default_poll_configuration()),
        // No global changes what a later call answers: a warm instance may
        // serve the next call (the arena in arena.rs then just runs out
        // and allocation falls through to the system allocator).
        stateless: true,
    }
}

/// The resources a polling instance polls when it names none: every
/// well-known resource at its REST path, mapped by this element (paging by
/// `page`/`pageSize`, dates from `_info`), as `event.poller.configuration`
/// JSON text: `{"tickets": {"url": "/service/tickets"}, …}`.
pub fn default_poll_configuration() -> String {
    let resources: serde_json::Map<String, serde_json::Value> = rest::KNOWN_RESOURCES
        .iter()
        .map(|known| {
            (
                known.name.to_owned(),
                serde_json::json!({ "url": known.path }),
            )
        })
        .collect();
    serde_json::Value::Object(resources).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn aliases_are_consulted_in_order() {
        let config = pairs(&[(PUBLIC_KEY, " "), (PUBLIC_KEY_ALIAS, "pub ")]);
        let settings = Settings::new(&config);
        assert_eq!(
            settings.get_any(&[PUBLIC_KEY, PUBLIC_KEY_ALIAS]),
            Some("pub")
        );
        assert_eq!(settings.get(PUBLIC_KEY), None);
        match settings.require_any(&[PRIVATE_KEY, PRIVATE_KEY_ALIAS]) {
            Err(ElementError::BadRequest(message)) => assert!(message.contains(PRIVATE_KEY)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn verification_is_on_unless_false() {
        let on =
            |value: &str| Settings::new(&pairs(&[(VERIFY_SIGNATURE, value)])).verify_signature();
        assert!(Settings::new(&[]).verify_signature());
        assert!(on("true"));
        assert!(on("yes"));
        assert!(!on("false"));
        assert!(!on(" FALSE "));
    }

    #[test]
    fn describes_the_element() {
        let info = element_info();
        assert_eq!(info.key, "connectwise");
        assert_eq!(info.aliases, ["connectwisecrmrest"]);
        assert_eq!(info.modes, EventModes::WEBHOOKS | EventModes::POLLING);
        let required: Vec<_> = info
            .config_keys
            .iter()
            .filter(|k| k.required)
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(required, [SERVER_URL, COMPANY]);
        assert!(info.config_keys.iter().filter(|k| k.secret).all(|k| k
            .name
            .contains("public.key")
            || k.name.contains("private.key")
            || k.name == PUBLIC_KEY_ALIAS
            || k.name == PRIVATE_KEY_ALIAS));
        for documented in [
            PUBLIC_KEY_ALIAS,
            PRIVATE_KEY_ALIAS,
            COMPANY_SHORT,
            FILTER_NULLS,
        ] {
            assert!(
                info.config_keys.iter().any(|k| k.name == documented),
                "{documented}"
            );
        }
    }

    #[test]
    fn signing_keys_come_from_exact_cloud_hosts_or_the_configured_server() {
        let info = element_info();
        assert_eq!(info.fetch_hosts, CLOUD_API_HOSTS);
        assert!(
            info.fetch_hosts.iter().all(|h| !h.contains('*')),
            "no wildcard: {:?}",
            info.fetch_hosts
        );
        assert_eq!(info.fetch_host_config_keys, [SERVER_URL]);
    }

    #[test]
    fn polls_tickets_companies_and_contacts_by_default() {
        let text = element_info().default_poll_configuration.unwrap();
        let defaults: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            defaults,
            serde_json::json!({
                "tickets": {"url": "/service/tickets"},
                "companies": {"url": "/company/companies"},
                "contacts": {"url": "/company/contacts"},
            })
        );
    }
}
