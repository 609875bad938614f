//! Settings for outbound requests: which private addresses the operator opens up, which
//! extra certificate authorities are trusted, and the time, size and cache limits of the
//! fetches plugins ask the host to make.
//!
//! Every default lives in [`OutboundConfig::default`]; durations are stored as
//! milliseconds so the same struct reads from a file or from environment variables.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// Name of the setting that opens private addresses to outbound requests; denial messages
/// point the operator at it.
pub const ALLOW_PRIVATE_SETTING: &str = "PLUGBOARD_OUTBOUND_ALLOW_PRIVATE";

/// Policy and limits for every request the host sends out.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Private, loopback or otherwise non-public addresses and CIDR ranges that requests
    /// may reach anyway (for on-premises vendors and receivers). Empty by default, so only
    /// public addresses are reachable. Reads as a list or as one comma-separated string.
    #[serde(deserialize_with = "deserialize_allow_list")]
    pub allow_private: Vec<IpNet>,
    /// PEM file of extra certificate authorities trusted for HTTPS, on top of the bundled
    /// public (webpki) roots.
    pub ca_file: Option<PathBuf>,
    /// Longest time to establish a TCP connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-request deadline (connect, headers and body) of a plugin fetch, in
    /// milliseconds.
    pub plugin_fetch_timeout_ms: u64,
    /// Largest response body a plugin fetch accepts, in bytes.
    pub plugin_fetch_max_bytes: usize,
    /// How long a successful plugin fetch is served from cache, in milliseconds.
    pub plugin_fetch_cache_ttl_ms: u64,
    /// Ports other than 443 that plugin fetches may use; for on-premises servers and
    /// tests. Empty by default.
    pub plugin_fetch_allowed_ports: Vec<u16>,
    /// How long an idle pooled connection is kept for reuse, in milliseconds.
    pub pool_idle_timeout_ms: u64,
    /// Most idle connections kept per host (at least the delivery's
    /// per-host limit once [`OutboundConfig::keeping_idle`] is applied).
    pub max_idle_per_host: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_private: Vec::new(),
            ca_file: None,
            connect_timeout_ms: 10_000,
            plugin_fetch_timeout_ms: 5_000,
            plugin_fetch_max_bytes: 64 * 1024,
            plugin_fetch_cache_ttl_ms: 300_000,
            plugin_fetch_allowed_ports: Vec::new(),
            pool_idle_timeout_ms: 90_000,
            max_idle_per_host: 16,
        }
    }
}

impl OutboundConfig {
    /// This configuration keeping at least `connections` idle connections
    /// per host: as many as deliveries may hold open to one receiver at
    /// once. With fewer, the connections of a burst beyond the idle limit
    /// are closed when it ends and opened again for the next one: a TCP
    /// handshake (and a TLS one for HTTPS) for every delivery past the
    /// limit.
    pub fn keeping_idle(mut self, connections: usize) -> Self {
        self.max_idle_per_host = self.max_idle_per_host.max(connections);
        self
    }

    /// TCP connect deadline.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Whole-request deadline of a plugin fetch.
    pub fn plugin_fetch_timeout(&self) -> Duration {
        Duration::from_millis(self.plugin_fetch_timeout_ms)
    }

    /// Lifetime of a cached plugin fetch.
    pub fn plugin_fetch_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.plugin_fetch_cache_ttl_ms)
    }

    /// Idle lifetime of a pooled connection.
    pub fn pool_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_idle_timeout_ms)
    }
}

/// Parses a comma-separated allow-list of IP addresses and CIDR ranges.
///
/// A bare address stands for itself alone (`/32` or `/128`); host bits of a range are
/// cleared (`10.1.2.3/8` becomes `10.0.0.0/8`); blank entries are skipped. The error names
/// the first entry that is neither an address nor a range.
pub fn parse_allow_list(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(parse_allow_entry)
        .collect()
}

fn parse_allow_entry(entry: &str) -> Result<IpNet, String> {
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))
}

/// Reads the allow-list either as a list of entries or as one comma-separated string.
fn deserialize_allow_list<'de, D>(deserializer: D) -> Result<Vec<IpNet>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Joined(String),
        List(Vec<String>),
    }
    let joined = match Raw::deserialize(deserializer)? {
        Raw::Joined(s) => s,
        Raw::List(entries) => entries.join(","),
    };
    parse_allow_list(&joined).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn bare_addresses_become_single_host_ranges() {
        let parsed = parse_allow_list("10.0.0.5, ::1").unwrap();
        assert_eq!(parsed, nets(&["10.0.0.5/32", "::1/128"]));
    }

    #[test]
    fn ranges_are_truncated_and_blanks_skipped() {
        let parsed = parse_allow_list(" 127.0.0.0/8,,10.1.2.3/8 , fd00::1/8 ,").unwrap();
        assert_eq!(parsed, nets(&["127.0.0.0/8", "10.0.0.0/8", "fd00::/8"]));
        assert_eq!(parse_allow_list("").unwrap(), Vec::new());
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["intranet", "10.0.0.0/33", "10.0.0", "::1/129", "10.0.0.1/"] {
            let err = parse_allow_list(&format!("127.0.0.1,{bad}")).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn deserializes_list_or_joined_string_with_defaults() {
        let from_list: OutboundConfig =
            serde_json::from_str(r#"{"allow_private": ["10.0.0.0/8", "::1"]}"#).unwrap();
        let from_string: OutboundConfig =
            serde_json::from_str(r#"{"allow_private": "10.0.0.0/8,::1"}"#).unwrap();
        assert_eq!(from_list, from_string);
        assert_eq!(from_list.allow_private, nets(&["10.0.0.0/8", "::1/128"]));
        assert_eq!(from_list.plugin_fetch_timeout(), Duration::from_secs(5));
        assert_eq!(from_list.plugin_fetch_max_bytes, 65_536);
        assert_eq!(from_list.plugin_fetch_cache_ttl(), Duration::from_secs(300));
    }

    #[test]
    fn deserialize_rejects_bad_entries_and_unknown_fields() {
        let err = serde_json::from_str::<OutboundConfig>(r#"{"allow_private": "nope"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(serde_json::from_str::<OutboundConfig>(r#"{"allow_privat": []}"#).is_err());
    }
}
