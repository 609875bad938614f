//! Every request the host makes to the outside world, behind one policy.
//!
//! Deliveries to callback URLs, polling of vendor APIs and the fetches plugins ask for
//! (such as a vendor's signing key) all go through one [`OutboundClient`]. It guarantees:
//!
//! - **Address policy.** Connections go only to public addresses, or to private ones the
//!   operator listed in [`OutboundConfig::allow_private`]. Names are resolved once and the
//!   connection is made to a checked address ([`PolicyResolver`]), so a second DNS answer
//!   cannot redirect it; IP-literal hosts are checked before sending.
//! - **No redirects.** A 3xx is returned as a response, never followed.
//! - **Bounded exchanges.** Each request has a deadline covering connect, headers and
//!   body, and a body size cap enforced while reading.
//! - **Hostile-URL rules for plugin fetches** ([`OutboundClient::plugin_get`]): HTTPS only,
//!   no userinfo or fragment, port 443 unless the operator allows another, and only hosts
//!   the element declared ([`HostAllowList`]); successful responses are briefly cached.
//! - **Quiet errors.** [`FetchError`] names the rule or the failing layer, never a header
//!   value or a full URL.

mod allow_list;
mod cache;
mod client;
mod config;
mod error;
mod plugin_fetch;
mod policy;
mod resolver;
mod response;
mod target;
mod tls;

#[cfg(test)]
mod test_support;

pub use allow_list::HostAllowList;
pub use client::OutboundClient;
pub use config::{parse_allow_list, OutboundConfig, ALLOW_PRIVATE_SETTING};
pub use error::FetchError;
pub use policy::AddressPolicy;
pub use resolver::{PolicyResolver, ResolveError};
pub use response::OutboundResponse;
pub(crate) use tls::add_ca_file;
