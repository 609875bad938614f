//! Receipts: every inbound vendor request plugboard accepted, kept verbatim
//! with what the plugin made of it.
//!
//! A receipt is stored whether the plugin mapped it (`accepted`, with its
//! events) or failed on it (`failed`, with the error), so a failed one can be
//! processed again once the plugin is fixed. Receipt ids are UUIDv7 strings.

use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use super::error::StoreError;
use super::event::NewEvent;
use super::outbox::NewNotification;

/// One inbound request to store, with the plugin's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct NewReceipt {
    /// The instance the request was addressed to.
    pub instance_id: i64,
    /// The element that handled it.
    pub element_key: String,
    /// When plugboard received it.
    pub received_at: OffsetDateTime,
    /// The vendor's id of the message, if the plugin found one.
    pub message_id: Option<String>,
    /// How far back an accepted receipt with the same `message_id` makes this
    /// one a duplicate.
    pub dedup_window: Duration,
    /// The request method.
    pub method: String,
    /// The request path (with query, if any).
    pub path: String,
    /// The request headers in the order received.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Bytes,
    /// What the plugin made of it.
    pub outcome: ReceiptStatus,
}

/// The plugin's verdict on a request.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiptStatus {
    /// The plugin mapped the request.
    Accepted {
        /// The JSON text notifications should carry as `raw`; `None` means
        /// the body itself.
        raw: Option<String>,
        /// The normalized events, in the plugin's order (may be empty).
        events: Vec<NewEvent>,
        /// The notifications made of those events, stored in the same
        /// transaction so nothing accepted can be lost before delivery.
        notifications: Vec<NewNotification>,
    },
    /// The plugin trapped or timed out; the receipt is kept so it can be
    /// processed again.
    Failed {
        /// What went wrong, for operators.
        error: String,
    },
}

/// What became of a receipt handed to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// The receipt and its events are durably stored.
    Stored {
        /// The new receipt's id.
        receipt_id: String,
        /// The new events' ids, in the order given.
        event_ids: Vec<String>,
    },
    /// An accepted receipt with the same vendor message id was stored within
    /// the de-duplication window; nothing new was stored.
    Duplicate {
        /// The id of the receipt stored first.
        receipt_id: String,
    },
}

impl ReceiptOutcome {
    /// The id of the receipt this outcome names (new or original).
    pub fn receipt_id(&self) -> &str {
        match self {
            ReceiptOutcome::Stored { receipt_id, .. }
            | ReceiptOutcome::Duplicate { receipt_id } => receipt_id,
        }
    }
}

/// Whether a stored receipt was mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptState {
    /// The plugin mapped it; its events are stored.
    Accepted,
    /// The plugin failed on it; it waits to be processed again.
    Failed,
}

impl ReceiptState {
    /// The stored spelling: `accepted` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::Accepted => "accepted",
            ReceiptState::Failed => "failed",
        }
    }

    /// Reads the stored spelling back.
    pub(super) fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "accepted" => Ok(ReceiptState::Accepted),
            "failed" => Ok(ReceiptState::Failed),
            other => Err(StoreError::Corrupt(format!(
                "unknown receipt status {other:?}"
            ))),
        }
    }
}

/// A receipt as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReceipt {
    /// The receipt id (UUIDv7).
    pub id: String,
    /// The instance it was addressed to.
    pub instance_id: i64,
    /// The element that handled it.
    pub element_key: String,
    /// When plugboard received it.
    pub received_at: OffsetDateTime,
    /// The vendor's message id, if any.
    pub message_id: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The request headers in the order received.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// Mapped or failed.
    pub status: ReceiptState,
    /// The plugin's failure, for failed receipts.
    pub error: Option<String>,
    /// The JSON text notifications carry as `raw`. `None`: the body itself
    /// (a plugin's raw text equal to the body is not stored twice).
    pub raw: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_spelling() {
        for s in [ReceiptState::Accepted, ReceiptState::Failed] {
            assert_eq!(ReceiptState::parse(s.as_str()).unwrap(), s);
        }
        assert!(ReceiptState::parse("duplicate").is_err());
    }

    #[test]
    fn outcome_names_its_receipt() {
        let stored = ReceiptOutcome::Stored {
            receipt_id: "a".into(),
            event_ids: vec![],
        };
        let duplicate = ReceiptOutcome::Duplicate {
            receipt_id: "b".into(),
        };
        assert_eq!(stored.receipt_id(), "a");
        assert_eq!(duplicate.receipt_id(), "b");
    }
}
