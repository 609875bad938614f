//! Receipts: every inbound vendor request plugboard accepted, kept verbatim
//! with what the plugin made of it.
//!
//! A receipt is stored whether the plugin mapped it (`accepted`, with the
//! notifications carrying its events) or failed on it (`failed`, with the error), so a failed one can be
//! processed again once the plugin is fixed. Receipt ids are UUIDv7 strings.

use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

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
        /// The notifications made of the normalized events (which they
        /// carry), stored in the same transaction so nothing accepted can be
        /// lost before delivery.
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
    /// The receipt and its notifications are durably stored.
    Stored {
        /// The new receipt's id.
        receipt_id: String,
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
    /// The plugin mapped it; its notifications are stored.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_its_receipt() {
        let stored = ReceiptOutcome::Stored {
            receipt_id: "a".into(),
        };
        let duplicate = ReceiptOutcome::Duplicate {
            receipt_id: "b".into(),
        };
        assert_eq!(stored.receipt_id(), "a");
        assert_eq!(duplicate.receipt_id(), "b");
    }
}
