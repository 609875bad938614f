//! The hosts an element's plugin may ask the host to fetch from.
//!
//! A [`HostAllowList`] is built from the patterns an element declares: exact host names
//! (`api.example.com`), leading wildcards (`*.example.com`, which match subdomains at any
//! depth but not `example.com` itself) and exact IP literals (`203.0.113.7`, `2001:db8::1`
//! or `[2001:db8::1]`). Names compare case-insensitively, after IDNA normalization, and
//! ignore a trailing dot. Matching a pattern only opens the host name; the address policy
//! still applies to whatever it resolves to.

use std::net::IpAddr;

use url::Host;

/// One allowed-host pattern, normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// Exactly this host name.
    Exact(String),
    /// Any name ending in `.` + this suffix.
    Subdomains(String),
    /// Exactly this address.
    Address(IpAddr),
}

/// The set of hosts one element may fetch from. Empty means nothing is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostAllowList {
    patterns: Vec<Pattern>,
}

impl HostAllowList {
    /// Builds the list from patterns; the error names the first pattern that is not a
    /// host name, a `*.`-prefixed host name or an IP address.
    pub fn from_patterns<I, S>(patterns: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| parse_pattern(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether a request to `host` is allowed.
    pub fn allows<S: AsRef<str>>(&self, host: &Host<S>) -> bool {
        match host {
            Host::Domain(name) => {
                let name = normalize_name(name.as_ref());
                self.patterns.iter().any(|p| match p {
                    Pattern::Exact(exact) => *exact == name,
                    Pattern::Subdomains(suffix) => name
                        .strip_suffix(suffix.as_str())
                        .and_then(|head| head.strip_suffix('.'))
                        .is_some_and(|label| !label.is_empty()),
                    Pattern::Address(_) => false,
                })
            }
            Host::Ipv4(v4) => self.allows_address(IpAddr::V4(*v4)),
            Host::Ipv6(v6) => self.allows_address(IpAddr::V6(*v6)),
        }
    }

    fn allows_address(&self, ip: IpAddr) -> bool {
        self.patterns.contains(&Pattern::Address(ip))
    }
}

fn parse_pattern(raw: &str) -> Result<Pattern, String> {
    let invalid = || format!("allowed host {raw:?} is not a host name, *.domain or IP address");
    let text = raw.trim();
    if let Some(suffix) = text.strip_prefix("*.") {
        return match parse_host(suffix) {
            Some(Host::Domain(name)) => Ok(Pattern::Subdomains(name)),
            _ => Err(invalid()),
        };
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Pattern::Address(ip));
    }
    match parse_host(text).ok_or_else(invalid)? {
        Host::Domain(name) => Ok(Pattern::Exact(name)),
        Host::Ipv4(v4) => Ok(Pattern::Address(IpAddr::V4(v4))),
        Host::Ipv6(v6) => Ok(Pattern::Address(IpAddr::V6(v6))),
    }
}

/// Parses a host the way URLs are parsed, so patterns and request hosts normalize alike.
/// Rejects anything that is not purely a host (wildcards, ports, paths).
fn parse_host(text: &str) -> Option<Host<String>> {
    let bracketed_ipv6 = text.starts_with('[');
    if text.is_empty() || !bracketed_ipv6 && text.contains(['*', ':', '/', '@', '?', '#']) {
        return None;
    }
    let url = url::Url::parse(&format!("https://{text}/")).ok()?;
    let host = url.host()?.to_owned();
    let reassembled = url.port().is_none() && url.path() == "/" && url.username().is_empty();
    reassembled.then(|| match host {
        Host::Domain(name) => Host::Domain(normalize_name(&name)),
        other => other,
    })
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> HostAllowList {
        HostAllowList::from_patterns(patterns).unwrap()
    }

    fn allows(list: &HostAllowList, url: &str) -> bool {
        list.allows(&url::Url::parse(url).unwrap().host().unwrap())
    }

    #[test]
    fn exact_names_ignore_case_and_trailing_dot() {
        let list = list(&["API.Example.com."]);
        assert!(allows(&list, "https://api.example.com/x"));
        assert!(allows(&list, "https://API.EXAMPLE.COM./x"));
        assert!(!allows(&list, "https://example.com/"));
        assert!(!allows(&list, "https://www.api.example.com/"));
        assert!(!allows(&list, "https://api.example.com.evil.net/"));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let list = list(&["*.myconnectwise.net"]);
        assert!(allows(&list, "https://api-na.myconnectwise.net/"));
        assert!(allows(&list, "https://a.b.myconnectwise.net/"));
        assert!(!allows(&list, "https://myconnectwise.net/"));
        assert!(!allows(&list, "https://evilmyconnectwise.net/"));
        assert!(!allows(&list, "https://myconnectwise.net.evil.com/"));
    }

    #[test]
    fn addresses_match_exactly() {
        let list = list(&["203.0.113.7", "2001:db8::1", "[2001:db8::2]"]);
        assert!(allows(&list, "https://203.0.113.7/"));
        assert!(allows(&list, "https://[2001:db8::1]/"));
        assert!(allows(&list, "https://[2001:db8::2]/"));
        assert!(!allows(&list, "https://203.0.113.8/"));
        // The URL parser reads this shorthand as 203.0.113.7 too.
        assert!(allows(&list, "https://203.0.28935/"));
        assert!(!list.allows(&Host::Domain("203.0.113.7.nip.io")));
    }

    #[test]
    fn international_names_compare_in_ascii_form() {
        let list = list(&["bücher.example"]);
        assert!(allows(&list, "https://xn--bcher-kva.example/"));
        assert!(allows(&list, "https://BÜCHER.example/"));
    }

    #[test]
    fn empty_list_allows_nothing() {
        assert!(!allows(&HostAllowList::default(), "https://example.com/"));
    }

    #[test]
    fn bad_patterns_are_named() {
        for bad in [
            "",
            "*",
            "*.",
            "a*.example.com",
            "*.*.example.com",
            "host:443",
            "host/path",
            "user@host",
            "*.10.0.0.1",
        ] {
            let err = HostAllowList::from_patterns([bad]).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
