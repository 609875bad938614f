//! The embedded durable store: element instances, every webhook receipt
//! plugboard accepted, and the normalized events made from them.
//!
//! SQLite in write-ahead-log mode, in one file under the data folder. The
//! guarantees:
//! - **Durable before acknowledged.** [`Store::record_receipt`] returns only
//!   after the transaction holding the receipt is committed; with the default
//!   [`Synchronous::Full`] that commit is on disk.
//! - **Group commit.** One writer thread owns the write connection and writes
//!   every receipt queued at that moment (up to [`StoreOptions::max_batch`])
//!   in one transaction, so concurrent webhooks share one `fsync`. Each receipt has its own savepoint: one
//!   failing (say, its instance was just deleted) leaves the others stored.
//! - **One receipt per vendor message.** A receipt repeating the message id
//!   of an accepted receipt of the same instance within its de-duplication
//!   window is not stored again, whether the first came in an earlier batch
//!   or the same one.
//! - **Reads never wait for writes.** Reads use a small pool of read-only
//!   connections on blocking threads and see the last committed state.
//!
//! All SQL sits behind the backend trait in `backend.rs`, implemented for
//! SQLite in `sqlite/`; [`Store`] itself only queues work and waits.

mod backend;
mod error;
mod event;
mod handle;
mod instance;
mod options;
mod outbox;
mod poll;
mod reader;
mod receipt;
mod sqlite;
#[cfg(test)]
mod test_support;
mod timestamp;
mod writer;

pub use error::{Result, StoreError};
pub use event::{EventQuery, EventType, NewEvent, StoredEvent, DEFAULT_EVENT_PAGE};
pub use handle::{Pruned, Store, PRUNE_CHUNK};
pub use instance::{Instance, InstancePatch, NewInstance};
pub use options::{StoreOptions, Synchronous};
pub use outbox::{
    AttemptNext, AttemptRecord, DeliveryState, DueNotification, NewNotification, NotificationQuery,
    NotificationSource, OutboxDepth, Redeliver, StoredAttempt, StoredNotification,
};
pub use poll::{PollCheckpoint, PollOutcome, PollWrite};
pub use receipt::{NewReceipt, ReceiptOutcome, ReceiptState, ReceiptStatus, StoredReceipt};
pub use writer::StoreStats;
