//! The one error type of outbound requests, and its construction from the layers below
//! (hyper, the connector, TLS, the policy resolver).
//!
//! Messages name the rule or the failing layer, never a request header (headers may carry
//! credentials) and never a full URL (query strings may carry them too).

use std::error::Error as StdError;
use std::io;

use super::resolver::ResolveError;

/// Why an outbound request produced no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The request breaks the outbound policy; the message names the rule.
    #[error("outbound request denied: {0}")]
    Denied(String),
    /// The request is malformed (unparsable URL, missing host, invalid header).
    #[error("invalid outbound request: {0}")]
    InvalidRequest(String),
    /// No complete response arrived within the deadline.
    #[error("outbound request timed out")]
    Timeout,
    /// The response body exceeds the size cap.
    #[error("outbound response is larger than {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// Connecting, the TLS handshake or the HTTP exchange failed.
    #[error("outbound request failed: {0}")]
    Failed(String),
}

impl FetchError {
    /// Classifies an error from the HTTP client or from reading a body: a policy refusal
    /// met during resolution stays a refusal, an I/O timeout is a timeout, and everything
    /// else becomes [`FetchError::Failed`] with the whole chain of causes.
    pub(super) fn from_transport(err: &(dyn StdError + 'static)) -> Self {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(current) = cause {
            if let Some(ResolveError::Denied(message)) = current.downcast_ref::<ResolveError>() {
                return Self::Denied(message.clone());
            }
            if current
                .downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
            {
                return Self::Timeout;
            }
            cause = current.source();
        }
        Self::Failed(describe_chain(err))
    }
}

/// Joins an error and its causes into one line, skipping a cause whose text its parent
/// already includes.
fn describe_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(current) = cause {
        let part = current.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = current.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] Box<dyn StdError + Send + Sync>);

    #[test]
    fn policy_refusal_inside_a_chain_stays_a_refusal() {
        let inner = ResolveError::Denied("address 10.0.0.5 of x is private".into());
        let err = Outer(Box::new(inner));
        assert_eq!(
            FetchError::from_transport(&err),
            FetchError::Denied("address 10.0.0.5 of x is private".into())
        );
    }

    #[test]
    fn io_timeouts_are_timeouts() {
        let err = Outer(Box::new(io::Error::new(io::ErrorKind::TimedOut, "slow")));
        assert_eq!(FetchError::from_transport(&err), FetchError::Timeout);
    }

    #[test]
    fn other_failures_keep_their_causes() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        let err = Outer(Box::new(refused));
        assert_eq!(
            FetchError::from_transport(&err),
            FetchError::Failed("client error (Connect): connection refused".into())
        );
    }
}
