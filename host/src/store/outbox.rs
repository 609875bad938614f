//! The outbox: notifications waiting to reach an instance's callback URL,
//! written in the same transaction as the receipt (or poll) they come from,
//! and every delivery attempt made for them.
//!
//! A notification is `pending` until a delivery succeeds (`delivered`) or
//! its attempts run out (`dead`, the dead-letter state). Claiming a due
//! notification moves its next attempt time forward by a lease and stamps
//! it with the claim's lease token, so a crash mid-delivery leaves it due
//! again (delivery is at least once), and an outcome is written only by the
//! claimant still holding the lease.

use bytes::Bytes;
use time::OffsetDateTime;

/// `next_attempt_at` of an ordered notification waiting for the one before
/// it about the same object to settle (see [`NewNotification::order_key`]):
/// never due until that one is delivered or dead-lettered.
pub(super) const WAITING: i64 = i64::MAX - 1;

/// Where a notification's events came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationSource {
    /// An inbound webhook.
    Webhook,
    /// A poll of the vendor's API.
    Polling,
}

impl NotificationSource {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationSource::Webhook => "webhook",
            NotificationSource::Polling => "polling",
        }
    }
}

/// A notification to store with its receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    /// Its `eventId` (chosen by the caller, who built the body around it).
    pub id: String,
    /// Webhook or polling.
    pub source: NotificationSource,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// The exact bytes to sign and send on every attempt.
    pub body: Bytes,
    /// How many events the body carries.
    pub event_count: u32,
    /// What the events are about, for searching the event log.
    pub events: Vec<EventKey>,
    /// Left out by the instance's event filter: stored settled (never
    /// claimed, pruned like delivered ones) until a redelivery sends it.
    pub filtered: bool,
    /// For an instance with ordered delivery: the object the notification
    /// is about (every event of it is about that one object). Of the
    /// unsettled notifications with the same key and instance, only one is
    /// due or in flight at a time, the others wait in the order they were
    /// accepted; `None` for unordered delivery.
    pub order_key: Option<String>,
}

/// What one event of a notification is about: the fields the event log is
/// searched by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventKey {
    /// `CREATED`, `UPDATED`, `DELETED` or `UNKNOWN`.
    pub event_type: String,
    /// The vendor's object type.
    pub object_type: String,
    /// The vendor's id of the object.
    pub object_id: String,
}

/// Delivery state of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet delivered; attempts remain.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Attempts ran out: dead-lettered until redelivered.
    Dead,
    /// Left out by the instance's event filter: never sent unless
    /// redelivered. Stored as `delivered` with the `filtered` flag set.
    Filtered,
}

impl DeliveryState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            // Settled like a delivered one; the `filtered` flag tells them apart.
            DeliveryState::Filtered => "delivered",
        }
    }

    /// The state of a row from its stored `status` and `filtered` flag.
    pub(super) fn parse(s: &str, filtered: bool) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "delivered" if filtered => DeliveryState::Filtered,
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            _ => return None,
        })
    }
}

/// A notification claimed for delivery.
#[derive(Clone, Debug)]
pub struct DueNotification {
    /// Its `eventId`.
    pub id: String,
    /// The instance it is for.
    pub instance_id: i64,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// The bytes to send.
    pub body: Bytes,
    /// Attempts made so far in the current cycle (reset by a redelivery).
    pub attempts: u32,
    /// The claim's lease token: the attempt's outcome is written only while
    /// the notification still carries it.
    pub lease: String,
}

/// What became of one attempt, and what happens next.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptNext {
    /// Delivered: done.
    Delivered,
    /// Try again at this time.
    RetryAt(OffsetDateTime),
    /// Attempts are used up: dead-letter it.
    Dead,
}

/// One delivery attempt, to record.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    /// The notification's id.
    pub notification_id: String,
    /// The lease token of the claim the attempt was made under.
    pub lease: String,
    /// When the attempt started.
    pub attempted_at: OffsetDateTime,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u32,
    /// The first bytes of the receiver's answer (at most the configured
    /// prefix; empty if it sent none or did not answer).
    pub response_body: Bytes,
    /// What happens next.
    pub next: AttemptNext,
}

impl AttemptRecord {
    /// What the attempt writes to its notification: the new state, the
    /// next attempt time for a retry and the delivery time (unix
    /// milliseconds), the same for every backend.
    pub(super) fn outcome_columns(&self) -> (DeliveryState, Option<i64>, Option<i64>) {
        let at = super::timestamp::to_millis(self.attempted_at);
        match &self.next {
            AttemptNext::Delivered => (
                DeliveryState::Delivered,
                None,
                Some(at + i64::from(self.latency_ms)),
            ),
            AttemptNext::RetryAt(t) => (
                DeliveryState::Pending,
                Some(super::timestamp::to_millis(*t)),
                None,
            ),
            AttemptNext::Dead => (DeliveryState::Dead, None, None),
        }
    }
}

/// What [`Store::record_attempts`](super::Store::record_attempts) wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordedAttempts {
    /// Attempts written with their outcome.
    pub applied: u64,
    /// Notifications whose attempt was not written because their lease had
    /// passed to another claim (or a redelivery) meanwhile: 0 rows affected.
    pub stale: Vec<String>,
    /// Ordered notifications made due because the one before them settled.
    pub released: u64,
}

/// A recorded attempt, as the event log shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAttempt {
    /// When it started.
    pub attempted_at: OffsetDateTime,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub latency_ms: u32,
    /// The first bytes of the receiver's answer, as recorded.
    pub response_body: Bytes,
}

/// A notification as the event log shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredNotification {
    /// Its `eventId`.
    pub id: String,
    /// The instance it is for.
    pub instance_id: i64,
    /// The receipt it came from (webhooks).
    pub receipt_id: Option<String>,
    /// Webhook or polling.
    pub source: NotificationSource,
    /// Delivery state.
    pub state: DeliveryState,
    /// Attempts in the current cycle (a redelivery starts a new one).
    pub attempts: u32,
    /// Attempts in every cycle: the length of the whole attempt log.
    pub total_attempts: u32,
    /// When the next attempt is due (pending only, and not held).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Why a pending notification is not due at any time yet.
    pub held: Option<Held>,
    /// The last attempt's status code.
    pub last_status: Option<u16>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was stored.
    pub created_at: OffsetDateTime,
    /// When it was delivered.
    pub delivered_at: Option<OffsetDateTime>,
    /// How many events it carries.
    pub event_count: u32,
    /// The body exactly as stored and sent on every attempt. It is not
    /// parsed here: the vendor's raw data inside it may hold JSON that
    /// parses only as text (lone surrogate escapes, numbers beyond any
    /// machine type, any depth), and must read back as it was accepted.
    pub body: Bytes,
    /// Every attempt (filled by `get_notification` only).
    pub attempt_log: Vec<StoredAttempt>,
}

/// Why a pending notification has no time it is due at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Ordered delivery: an earlier notification about its object is not
    /// yet delivered or dead-lettered.
    Waiting,
    /// Its instance's delivery is paused (the receiver answered 410 Gone).
    Paused,
}

impl Held {
    /// The spelling the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Held::Waiting => "waiting",
            Held::Paused => "paused",
        }
    }

    /// Why a pending notification with this stored `next_attempt_at`, of
    /// an instance whose delivery is `paused` or not, is not due. A paused
    /// instance's notifications keep their due times (claims skip the
    /// instance), so pausing and resuming write one row, not its backlog.
    pub(super) fn of(next_attempt_at: i64, paused: bool) -> Option<Self> {
        match next_attempt_at {
            WAITING => Some(Held::Waiting),
            _ if paused => Some(Held::Paused),
            _ => None,
        }
    }
}

/// Which notifications a listing wants; newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationQuery {
    /// Only this instance's.
    pub instance_id: Option<i64>,
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// With `Pending`: only those already attempted (`Some(true)`) or not yet (`Some(false)`).
    pub attempted: Option<bool>,
    /// Cursor: only notifications older than this id.
    pub after: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Stored at or after.
    pub since: Option<OffsetDateTime>,
    /// Stored before.
    pub until: Option<OffsetDateTime>,
    /// Only those of instances of this element.
    pub element_key: Option<String>,
    /// Only those carrying an event about an object of this type…
    pub object_type: Option<String>,
    /// …with this id…
    pub object_id: Option<String>,
    /// …of this event type (`CREATED`, `UPDATED`, `DELETED`, `UNKNOWN`).
    pub event_type: Option<String>,
}

impl Default for NotificationQuery {
    fn default() -> Self {
        Self {
            instance_id: None,
            state: None,
            attempted: None,
            after: None,
            limit: 100,
            since: None,
            until: None,
            element_key: None,
            object_type: None,
            object_id: None,
            event_type: None,
        }
    }
}

/// What to send again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeliver {
    /// One notification, whatever its state.
    One(String),
    /// Every dead-lettered notification of an instance.
    DeadOf(i64),
    /// These notifications, whatever their state (one chunk of a
    /// redelivery by search).
    Ids(Vec<String>),
}

/// Outbox sizes, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Waiting for delivery.
    pub pending: u64,
    /// Dead-lettered.
    pub dead: u64,
}
