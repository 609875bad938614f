//! Which IP addresses outbound requests may reach.
//!
//! An address is reachable when it is public, or when the operator listed it in
//! [`OutboundConfig::allow_private`](super::OutboundConfig::allow_private). "Public" means
//! outside every special-purpose range of the IANA registries: loopback, private,
//! link-local, shared (CGNAT), documentation, benchmarking, multicast, reserved and the
//! like. IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by the
//! address they embed, so no translation path leads around the rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, LazyLock};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::Host;

use super::config::ALLOW_PRIVATE_SETTING;

/// IPv4 ranges that are never public.
static NON_PUBLIC_V4: LazyLock<Vec<Ipv4Net>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",       // "this network", including the unspecified address
        "10.0.0.0/8",      // private
        "100.64.0.0/10",   // shared address space (carrier-grade NAT)
        "127.0.0.0/8",     // loopback
        "169.254.0.0/16",  // link-local (cloud metadata services live here)
        "172.16.0.0/12",   // private
        "192.0.0.0/24",    // IETF protocol assignments
        "192.0.2.0/24",    // documentation (TEST-NET-1)
        "192.88.99.0/24",  // 6to4 relay anycast
        "192.168.0.0/16",  // private
        "198.18.0.0/15",   // benchmarking
        "198.51.100.0/24", // documentation (TEST-NET-2)
        "203.0.113.0/24",  // documentation (TEST-NET-3)
        "224.0.0.0/4",     // multicast
        "240.0.0.0/4",     // reserved, including the broadcast address
    ]
    .iter()
    .map(|net| net.parse().expect("static IPv4 range"))
    .collect()
});

/// IPv6 ranges that are never public. Ranges that embed an IPv4 address are handled by
/// [`embedded_ipv4`] instead.
static NON_PUBLIC_V6: LazyLock<Vec<Ipv6Net>> = LazyLock::new(|| {
    [
        "::/96",          // unspecified, loopback and the deprecated IPv4-compatible form
        "64:ff9b:1::/48", // local-use NAT64
        "100::/64",       // discard-only
        "2001::/32",      // Teredo
        "2001:2::/48",    // benchmarking
        "2001:db8::/32",  // documentation
        "3fff::/20",      // documentation
        "fc00::/7",       // unique-local
        "fe80::/10",      // link-local
        "fec0::/10",      // site-local (deprecated)
        "ff00::/8",       // multicast
    ]
    .iter()
    .map(|net| net.parse().expect("static IPv6 range"))
    .collect()
});

/// Prefixes whose addresses carry an IPv4 address that decides their fate.
static NAT64: LazyLock<Ipv6Net> = LazyLock::new(|| "64:ff9b::/96".parse().expect("NAT64"));
static SIX_TO_FOUR: LazyLock<Ipv6Net> = LazyLock::new(|| "2002::/16".parse().expect("6to4"));

/// Whether `ip` is a globally reachable unicast address.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => is_public_v4(v4),
            None => !NON_PUBLIC_V6.iter().any(|net| net.contains(&v6)),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !NON_PUBLIC_V4.iter().any(|net| net.contains(&ip))
}

/// The IPv4 address an IPv6 address stands for, if it is IPv4-mapped, NAT64 (well-known
/// prefix) or 6to4.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let o = ip.octets();
    if NAT64.contains(&ip) {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if SIX_TO_FOUR.contains(&ip) {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// The address rule applied to every connection: public addresses, plus the operator's
/// allow-list. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    allow_private: Arc<[IpNet]>,
}

impl AddressPolicy {
    /// A policy that also admits the given non-public ranges.
    pub fn new(allow_private: Vec<IpNet>) -> Self {
        Self {
            allow_private: allow_private.into(),
        }
    }

    /// Whether a connection to `ip` is allowed. An IPv4-mapped IPv6 address is matched
    /// against the allow-list as the IPv4 address it is.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || {
            let canonical = ip.to_canonical();
            self.allow_private
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&canonical))
        }
    }

    /// Judges an IP-literal host, as every request's host is judged before it leaves
    /// (names pass here; their addresses are judged when they are resolved). The error is
    /// the denial message, naming the setting that would allow the address.
    pub fn check_literal<S: AsRef<str>>(&self, host: &Host<S>) -> Result<(), String> {
        let ip = match host {
            Host::Ipv4(v4) => IpAddr::V4(*v4),
            Host::Ipv6(v6) => IpAddr::V6(*v6),
            Host::Domain(_) => return Ok(()),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Self::literal_denial(ip))
        }
    }

    /// Judges a host that is not resolved yet, for a URL kept to be used later (a
    /// callback URL): an IP literal as [`check_literal`](Self::check_literal) does, and
    /// the name `localhost` (or a name under `.localhost`, which RFC 6761 keeps for
    /// loopback) as the loopback addresses it stands for. Any other name passes; what it
    /// resolves to can change, so it is judged at each request.
    pub fn check_unresolved<S: AsRef<str>>(&self, host: &Host<S>) -> Result<(), String> {
        let Host::Domain(name) = host else {
            return self.check_literal(host);
        };
        let name = name.as_ref().trim_end_matches('.').to_ascii_lowercase();
        if name != "localhost" && !name.ends_with(".localhost") {
            return Ok(());
        }
        let loopback = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        if loopback.iter().any(|ip| self.permits(*ip)) {
            Ok(())
        } else {
            Err(Self::denial(&name, &loopback))
        }
    }

    /// The message given when an IP-literal host is refused.
    pub fn literal_denial(ip: IpAddr) -> String {
        format!("address {ip} is private or reserved and not in {ALLOW_PRIVATE_SETTING}")
    }

    /// The message given when every address `host` resolved to was refused.
    pub fn denial(host: &str, denied: &[IpAddr]) -> String {
        let list = denied
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let (noun, verb) = if denied.len() == 1 {
            ("address", "is")
        } else {
            ("addresses", "are")
        };
        format!(
            "{noun} {list} of {host} {verb} private or reserved and not in {ALLOW_PRIVATE_SETTING}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NON_PUBLIC: &[&str] = &[
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.5",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.254",
        "127.0.0.1",
        "127.255.0.9",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.10",
        "192.88.99.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.5",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "64:ff9b::a00:5",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "100::1",
        "2001::1",
        "2001:2::1",
        "2001:db8::1",
        "3fff::1",
        "2002:a00:1::1",
        "2002:7f00:1::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
    ];

    const PUBLIC: &[&str] = &[
        "1.1.1.1",
        "8.8.8.8",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.169.0.1",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ];

    #[test]
    fn non_public_ranges_are_refused() {
        for addr in NON_PUBLIC {
            assert!(
                !is_public(addr.parse().unwrap()),
                "{addr} counted as public"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in PUBLIC {
            assert!(
                is_public(addr.parse().unwrap()),
                "{addr} counted as non-public"
            );
        }
    }

    #[test]
    fn allow_list_opens_only_listed_ranges() {
        let policy = AddressPolicy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.5/32".parse().unwrap(),
        ]);
        let permits = |s: &str| policy.permits(s.parse().unwrap());
        assert!(permits("127.0.0.1"));
        assert!(permits("::ffff:127.0.0.1"));
        assert!(permits("10.0.0.5"));
        assert!(permits("8.8.8.8"));
        assert!(!permits("10.0.0.6"));
        assert!(!permits("::1"));
        assert!(!permits("169.254.169.254"));
        assert!(!AddressPolicy::default().permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn unresolved_hosts_are_judged_by_literal_and_loopback_name() {
        let host = |url: &str| url::Url::parse(url).unwrap().host().unwrap().to_owned();
        let closed = AddressPolicy::default();
        for refused in [
            "http://127.0.0.1:9000/x",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://10.0.0.5/",
            "http://169.254.169.254/latest",
            "http://[::ffff:192.168.1.1]/",
            "http://localhost:9000/",
            "http://LOCALHOST./",
            "http://app.localhost/",
        ] {
            let denial = closed.check_unresolved(&host(refused)).unwrap_err();
            assert!(
                denial.contains(ALLOW_PRIVATE_SETTING),
                "{refused}: {denial}"
            );
        }
        for passes in [
            "https://8.8.8.8/",
            "https://app.example.com/",
            "https://localhost.example.com/",
        ] {
            assert_eq!(closed.check_unresolved(&host(passes)), Ok(()), "{passes}");
        }
        let loopback = AddressPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(
            loopback.check_unresolved(&host("http://127.0.0.1:9/")),
            Ok(())
        );
        assert_eq!(
            loopback.check_unresolved(&host("http://localhost/")),
            Ok(())
        );
        assert!(loopback.check_unresolved(&host("http://[::1]/")).is_err());
    }

    #[test]
    fn denial_names_host_addresses_and_setting() {
        let one = AddressPolicy::denial("internal.example", &["10.0.0.5".parse().unwrap()]);
        assert_eq!(
            one,
            "address 10.0.0.5 of internal.example is private or reserved and not in \
             PLUGBOARD_OUTBOUND_ALLOW_PRIVATE"
        );
        let literal = AddressPolicy::literal_denial("::1".parse().unwrap());
        assert!(literal.starts_with("address ::1 is private"), "{literal}");
        let two = AddressPolicy::denial(
            "localhost",
            &["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        );
        assert!(
            two.starts_with("addresses 127.0.0.1, ::1 of localhost are"),
            "{two}"
        );
    }
}
