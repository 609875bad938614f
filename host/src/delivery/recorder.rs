//! Writes delivery attempts to the store in batches: every attempt that
//! finished while the previous batch was being written goes into the next
//! transaction, so recording keeps up with thousands of deliveries a second.
//! A recorded attempt frees a place in its instance's share of claims, and
//! one that settles an ordered notification may make the next one of its
//! object due: the dispatcher is woken for them.

use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::store::{AttemptRecord, Store};

/// Most attempts written in one transaction.
const MAX_BATCH: usize = 1024;

/// Where finished attempts are sent.
pub(super) type Recorder = mpsc::UnboundedSender<AttemptRecord>;

/// Starts the recorder task; `wake` wakes the dispatcher.
pub(super) fn start(store: Store, wake: Arc<Notify>) -> (Recorder, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<AttemptRecord>();
    let task = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let records = std::mem::take(&mut batch);
            let n = records.len();
            let result = store.record_attempts(records).await;
            // A recorded attempt frees a place in its instance's share (and
            // a settled ordered one may let the next of its object go).
            if result
                .as_ref()
                .is_ok_and(|r| r.applied > 0 || r.released > 0)
            {
                wake.notify_one();
            }
            match result {
                Ok(recorded) if !recorded.stale.is_empty() => {
                    crate::telemetry::metrics::delivery_outcomes_stale(recorded.stale.len());
                    // Their lease ended (or a redelivery took them) before
                    // the outcome was written: whoever holds them now decides.
                    tracing::warn!(
                        stale = recorded.stale.len(),
                        applied = recorded.applied,
                        notifications = ?recorded.stale,
                        "delivery outcomes not recorded: the lease had passed on"
                    );
                }
                Ok(_) => {}
                // The notifications stay leased and become due again when
                // the lease ends: they are sent again, never lost.
                Err(e) => {
                    tracing::error!(error = %e, attempts = n, "recording delivery attempts failed")
                }
            }
        }
    });
    (tx, task)
}
