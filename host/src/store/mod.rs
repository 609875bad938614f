//! The durable store: element instances, every webhook receipt plugboard
//! accepted, the notifications made from them (the outbox and event log)
//! and poll checkpoints.
//!
//! [`Store`] is what the rest of the host calls; it hands every operation
//! to a [`backend::Backend`] chosen by [`StoreConfig`]: the embedded SQLite
//! database (`sqlite/`, the default) or a PostgreSQL server (`postgres/`).
//! How each runs (SQLite's writer thread, read pool and log checkpoints;
//! PostgreSQL's connection pool and batching task) is its own business.
//! The guarantees, the same for every backend (and checked for each by the
//! conformance suite):
//! - **Durable before acknowledged.** [`Store::record_receipt`] returns
//!   only after the transaction holding the receipt and its notifications
//!   is committed. Concurrent receipts share commits (group commit); one
//!   failing receipt leaves the others of its batch stored.
//! - **One receipt per vendor message.** A receipt repeating the message
//!   id of an accepted receipt of the same instance within its
//!   de-duplication window is not stored again — enforced by a unique key,
//!   so it holds however many writers there are.
//! - **Leased claims.** A claimed notification carries a lease token; its
//!   attempt's outcome is written only while that token still holds it.
//! - **Checkpoints move forward only**, and **instance updates can be
//!   conditional** on the version the caller read.
//! - **It says when it cannot write.** After a receipt, poll page or
//!   attempt write failed with the database unavailable (a full disk, an
//!   I/O error), [`Store::write_problem`] names why until a write or the
//!   store's own probe succeeds (`write_health`); readiness reports it.

mod backend;
#[cfg(test)]
mod conformance;
mod counters;
mod error;
mod handle;
mod ids;
mod inbound;
mod inbound_log;
mod instance;
mod leases;
mod outbox;
mod pacing;
mod poll;
mod postgres;
mod receipt;
mod search;
mod session;
mod sqlite;
mod subscription;
#[cfg(test)]
mod test_support;
mod timestamp;
mod write_health;

pub use error::{ErrorKind, Result, StoreError};
pub use handle::{Pruned, Store, StoreConfig, StoreStats, PRUNE_CHUNK, REDELIVER_CHUNK};
pub use inbound::{
    DroppedEntries, InboundCaps, InboundEntry, InboundOutcome, InboundQuery, InboundWritten,
    NewInboundEntry, Settled, Settlement, StoredReceipt,
};
pub use instance::{Instance, InstancePatch, NewInstance};
pub(crate) use leases::Leases;
pub use leases::{partition_of, Fence, HeldPartition, ReplicaRecord, PARTITIONS};
pub use outbox::{
    AttemptNext, AttemptRecord, DeliveryState, DueNotification, EventKey, Held, NewNotification,
    NotificationQuery, NotificationSource, OutboxDepth, RecordedAttempts, Redeliver, StoredAttempt,
    StoredNotification,
};
pub use pacing::{ClaimRules, Claimed, Rate};
pub use poll::{PollCheckpoint, PollOutcome, PollWrite};
pub use postgres::Notification;
pub use receipt::{NewReceipt, ReceiptOutcome, ReceiptState, ReceiptStatus};
pub use session::SessionRules;
pub use subscription::{SubscriptionStatus, VendorSubscription};
