//! Why a poll of a resource failed. Every failure is recorded as the
//! resource's last error and backs its polling off; none stops the other
//! resources or instances.

use std::time::Duration;

use crate::outbound::FetchError;

/// A failed poll of one resource.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The vendor answered with a status other than 2xx.
    #[error("vendor answered {status}{}", retry_note(.retry_after))]
    Vendor {
        /// The status.
        status: u16,
        /// Its `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// The request got no answer (policy, connection, timeout, size).
    #[error("{0}")]
    Fetch(FetchError),
    /// The element plugin failed or refused.
    #[error("element {0}")]
    Plugin(String),
    /// The vendor's answer cannot be mapped (e.g. malformed JSON).
    #[error("unusable answer: {0}")]
    Answer(String),
    /// The poll's events could not be stored; the checkpoint did not move.
    #[error("storing the poll failed: {0}")]
    Store(String),
    /// The page was not written: this replica no longer holds the
    /// instance's partition lease (another replica polls it now).
    #[error("this replica no longer holds the instance's partition lease; nothing was written")]
    Fenced,
    /// The resource cannot be polled as configured.
    #[error("{0}")]
    Setup(String),
}

impl PollError {
    /// How long the vendor asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PollError::Vendor { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn retry_note(retry_after: &Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| format!(" (Retry-After {} s)", d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let throttled = PollError::Vendor {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            throttled.to_string(),
            "vendor answered 429 (Retry-After 3 s)"
        );
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        let failed = PollError::Vendor {
            status: 500,
            retry_after: None,
        };
        assert_eq!(failed.to_string(), "vendor answered 500");
        assert_eq!(PollError::Answer("x".into()).retry_after(), None);
    }
}
