//! Name resolution that applies the address policy.
//!
//! [`PolicyResolver`] plugs into hyper-util's `HttpConnector`: it resolves a host name with
//! the system resolver, drops every address the [`AddressPolicy`] refuses, and hands the
//! connector only the survivors. The connection is therefore made to an address that was
//! checked, never to one from a second lookup, which closes the DNS-rebinding window.
//! IP-literal hosts never reach a resolver; the client checks those itself.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use tower::Service;

use super::policy::AddressPolicy;

/// Why a host name yielded no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The lookup itself failed (unknown host, resolver unreachable, ...).
    #[error("could not resolve {host}: {source}")]
    Lookup {
        /// The host name that was looked up.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Every address the host resolved to is refused by the policy.
    #[error("{0}")]
    Denied(String),
}

/// A hyper-util resolver that returns only addresses the policy permits.
#[derive(Clone, Debug, Default)]
pub struct PolicyResolver {
    policy: AddressPolicy,
}

impl PolicyResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: AddressPolicy) -> Self {
        Self { policy }
    }

    /// Resolves `host` and keeps the permitted addresses (with port 0; the connector sets
    /// the port).
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let found: Vec<IpAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_owned(),
                source,
            })?
            .map(|addr| addr.ip())
            .collect();
        let (permitted, denied): (Vec<IpAddr>, Vec<IpAddr>) =
            found.iter().partition(|ip| self.policy.permits(**ip));
        if permitted.is_empty() {
            return Err(if denied.is_empty() {
                ResolveError::Lookup {
                    host: host.to_owned(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
                }
            } else {
                ResolveError::Denied(AddressPolicy::denial(host, &denied))
            });
        }
        if !denied.is_empty() {
            tracing::debug!(host, ?denied, "skipping non-public addresses");
        }
        Ok(permitted
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 0))
            .collect())
    }
}

impl Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolver = self.clone();
        Box::pin(async move { Ok(resolver.resolve(name.as_str()).await?.into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_allowed() -> PolicyResolver {
        PolicyResolver::new(AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]))
    }

    #[tokio::test]
    async fn keeps_only_permitted_addresses() {
        let addrs = loopback_allowed().resolve("localhost").await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip() == IpAddr::from([127, 0, 0, 1])));
    }

    #[tokio::test]
    async fn refusal_names_host_and_address() {
        let err = PolicyResolver::default()
            .resolve("localhost")
            .await
            .unwrap_err();
        let ResolveError::Denied(message) = err else {
            panic!("expected a denial, got {err}");
        };
        assert!(message.contains("127.0.0.1 of localhost"), "{message}");
        assert!(
            message.contains("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn works_as_a_hyper_util_resolver() {
        let mut resolver = loopback_allowed();
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<_> = resolver.call(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn unknown_hosts_fail_as_lookups() {
        let err = loopback_allowed()
            .resolve("no-such-host.invalid")
            .await
            .unwrap_err();
        assert!(matches!(err, ResolveError::Lookup { .. }), "{err}");
    }
}
