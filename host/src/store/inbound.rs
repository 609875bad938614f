//! The inbound log: every request vendors sent to `/events/…`, with what
//! became of it.
//!
//! Accepted and failed requests are the receipts themselves (their body and
//! headers are stored once, in `receipts`); the others — rejected (a 4xx or
//! 5xx before or instead of a receipt), duplicate (a repeat of an accepted
//! message), responded (the plugin answered itself, e.g. a handshake) — are
//! rows of their own in `inbound_requests`, written off the hot path in
//! batches and bounded: beyond a cap per instance and in total, new ones
//! are counted as dropped instead of stored (`inbound_dropped`). Listing
//! merges both, newest first, by their UUIDv7 ids.
//!
//! Reprocessing settles a failed receipt: accepted (with its notifications,
//! in one transaction, under the same de-duplication key rules as at
//! ingress) or still failed with a new error, conditional on it still
//! being failed, so two writers never settle it twice.

use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use super::outbox::NewNotification;

/// What became of an inbound request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboundOutcome {
    /// Stored as a receipt with its events.
    Accepted,
    /// Stored as a receipt the plugin failed on, kept for reprocessing.
    Failed,
    /// Refused (bad signature, malformed, events off, unknown instance…).
    Rejected,
    /// A repeat of a message already accepted; nothing new stored.
    Duplicate,
    /// The plugin answered the request itself (a handshake or challenge).
    Responded,
}

impl InboundOutcome {
    /// The stored and listed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundOutcome::Accepted => "accepted",
            InboundOutcome::Failed => "failed",
            InboundOutcome::Rejected => "rejected",
            InboundOutcome::Duplicate => "duplicate",
            InboundOutcome::Responded => "responded",
        }
    }

    /// The outcome spelled `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            InboundOutcome::Accepted,
            InboundOutcome::Failed,
            InboundOutcome::Rejected,
            InboundOutcome::Duplicate,
            InboundOutcome::Responded,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// Whether entries with this outcome are receipts.
    pub fn is_receipt(self) -> bool {
        matches!(self, InboundOutcome::Accepted | InboundOutcome::Failed)
    }
}

/// One inbound request that left no receipt, to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInboundEntry {
    /// The instance it was addressed to.
    pub instance_id: i64,
    /// The element key in its path.
    pub element_key: String,
    /// When it arrived.
    pub received_at: OffsetDateTime,
    /// Rejected, duplicate or responded (never a receipt's outcome).
    pub outcome: InboundOutcome,
    /// The status it was answered with.
    pub status: u16,
    /// The error code of the answer, if it was an error.
    pub code: Option<String>,
    /// Why, for people.
    pub reason: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The headers, secret values already redacted.
    pub headers: Vec<(String, String)>,
    /// The body's first bytes as received (`None`: the body was not read).
    pub body: Option<Bytes>,
    /// The body's whole length, when read.
    pub body_bytes: Option<u64>,
    /// For a duplicate, the receipt it repeats.
    pub receipt_id: Option<String>,
}

/// How many rejected/duplicate/responded entries are kept at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundCaps {
    /// Per instance.
    pub per_instance: u64,
    /// Over all instances.
    pub total: u64,
}

/// What one [`super::Store::record_inbound`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboundWritten {
    /// Entries stored.
    pub stored: u64,
    /// Entries counted as dropped instead (over a cap, or the instance gone).
    pub dropped: u64,
}

/// Which entries of the inbound log to list, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InboundQuery {
    /// Only this instance's.
    pub instance_id: Option<i64>,
    /// Only entries with this outcome.
    pub outcome: Option<InboundOutcome>,
    /// Only entries answered with this status (accepted ones count as 200).
    pub status: Option<u16>,
    /// Only entries received at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only entries received before this time.
    pub until: Option<OffsetDateTime>,
    /// Cursor: only entries older than this id.
    pub before: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// One entry of the inbound log.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundEntry {
    /// The receipt's id or the entry's own (UUIDv7, so in arrival order).
    pub id: String,
    /// The instance it was addressed to.
    pub instance_id: i64,
    /// The element key.
    pub element_key: String,
    /// When it arrived.
    pub received_at: OffsetDateTime,
    /// What became of it.
    pub outcome: InboundOutcome,
    /// The status it was answered with, when known (accepted: 200).
    pub status: Option<u16>,
    /// The error code of the answer.
    pub code: Option<String>,
    /// Why (the rejection's message, a failed receipt's error).
    pub reason: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The headers as stored (a receipt's are unredacted: redact before
    /// showing them).
    pub headers: Vec<(String, String)>,
    /// The body as stored; only read for one entry, `None` in listings.
    pub body: Option<Bytes>,
    /// The body's whole length, if read.
    pub body_bytes: Option<u64>,
    /// For a duplicate, the receipt it repeats.
    pub receipt_id: Option<String>,
    /// For an accepted one, its notifications' ids (sorted).
    pub event_ids: Vec<String>,
}

/// Entries of an instance counted as dropped instead of stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DroppedEntries {
    /// The instance.
    pub instance_id: i64,
    /// How many, since the count started.
    pub dropped: u64,
    /// When the latest was dropped.
    pub last_at: OffsetDateTime,
}

/// A stored receipt, whole, as reprocessing needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReceipt {
    /// Its id.
    pub id: String,
    /// Its instance.
    pub instance_id: i64,
    /// The element that handled it.
    pub element_key: String,
    /// When it arrived.
    pub received_at: OffsetDateTime,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The headers as received.
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: Bytes,
    /// The error, while it is failed; `None` once accepted.
    pub error: Option<String>,
}

/// The new verdict on a failed receipt.
#[derive(Clone, Debug, PartialEq)]
pub enum Settlement {
    /// The plugin mapped it this time.
    Accepted {
        /// The vendor's message id, if the plugin found one.
        message_id: Option<String>,
        /// The de-duplication window, as at ingress.
        dedup_window: Duration,
        /// The notifications made of its events.
        notifications: Vec<NewNotification>,
    },
    /// The plugin failed again (or refused it).
    Failed {
        /// The new error.
        error: String,
    },
}

/// What settling a failed receipt did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// It is accepted now, with these notifications.
    Accepted {
        /// Its notifications' ids.
        event_ids: Vec<String>,
    },
    /// Its message repeats an accepted receipt within the window: it is
    /// marked accepted, with no notifications of its own.
    Duplicate {
        /// The receipt holding the message.
        of: String,
    },
    /// It stays failed, with the new error.
    StillFailed,
    /// It is not (or no longer) a failed receipt: someone settled it first,
    /// or it is gone. Nothing was written.
    NotFailed,
}

/// Text for a stored duplicate's reason.
pub(super) fn duplicate_reason(of: &str) -> String {
    format!("duplicate of receipt {of}")
}

/// The upper id bound of a query (exclusive): the cursor or the end of
/// its time range, whichever is lower; and the lower bound (inclusive).
pub(super) fn id_bounds(q: &InboundQuery) -> (String, String) {
    use super::ids::id_floor;
    use super::timestamp::to_millis;
    let mut upper = q
        .until
        .map(|t| id_floor(to_millis(t)))
        .unwrap_or_else(|| "g".to_owned());
    if let Some(before) = q.before.as_ref().filter(|b| **b < upper) {
        upper = before.clone();
    }
    let lower = q.since.map(|t| id_floor(to_millis(t))).unwrap_or_default();
    (upper, lower)
}

/// Splits an aggregated, comma-joined list of notification ids.
pub(super) fn split_ids(joined: Option<String>) -> Vec<String> {
    let mut ids: Vec<String> = joined
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}
