//! The inbound log's writer: requests that left no receipt (rejected,
//! duplicate, responded) are queued here by the handlers and written in
//! batches by one task, so a flood of bad requests never waits on the
//! database nor holds up good ones. A full queue drops the entry at once
//! (counted per instance and written with the next batch); the store drops
//! what is over the caps the same way. The task also prunes entries older
//! than the log's retention.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{InboundCaps, NewInboundEntry, Store};
use crate::telemetry::metrics;

/// The inbound log's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundLogConfig {
    /// Bytes of a rejected request's body kept.
    pub body_bytes: usize,
    /// Entries (not receipts) kept per instance.
    pub max_per_instance: u64,
    /// Entries (not receipts) kept over all instances.
    pub max_total: u64,
    /// How long entries (not receipts) are kept.
    pub retention: Duration,
}

impl Default for InboundLogConfig {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            max_per_instance: 1_000,
            max_total: 50_000,
            retention: Duration::from_secs(72 * 3600),
        }
    }
}

/// Entries waiting to be written; beyond this, new ones are dropped.
const QUEUE: usize = 2_048;

/// Most entries written in one transaction.
const BATCH: usize = 256;

/// How often old entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The handle the ingress handlers record entries through. Cheap to clone.
#[derive(Clone)]
pub struct InboundLog {
    queue: mpsc::Sender<NewInboundEntry>,
    config: InboundLogConfig,
    /// Per instance, entries dropped before they reached the writer
    /// (added to the dropped counts with the next batch).
    early: Arc<Mutex<HashMap<i64, u64>>>,
}

impl InboundLog {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store, config: InboundLogConfig) -> Self {
        let (queue, entries) = mpsc::channel(QUEUE);
        let early = Arc::default();
        tokio::spawn(run(store, entries, config, Arc::clone(&early)));
        Self {
            queue,
            config,
            early,
        }
    }

    /// The log's bounds.
    pub fn config(&self) -> &InboundLogConfig {
        &self.config
    }

    /// Queues `entry` without waiting; when the queue is full it is
    /// dropped and counted.
    pub fn record(&self, entry: NewInboundEntry) {
        if let Err(e) = self.queue.try_send(entry) {
            let entry = match e {
                mpsc::error::TrySendError::Full(entry)
                | mpsc::error::TrySendError::Closed(entry) => entry,
            };
            metrics::inbound_dropped("queue_full", 1);
            let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
            *early.entry(entry.instance_id).or_default() += 1;
        }
    }
}

/// The writer loop: ends when every handle is gone and the queue is drained.
async fn run(
    store: Store,
    mut entries: mpsc::Receiver<NewInboundEntry>,
    config: InboundLogConfig,
    early: Arc<Mutex<HashMap<i64, u64>>>,
) {
    let caps = InboundCaps {
        per_instance: config.max_per_instance,
        total: config.max_total,
    };
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        let first = tokio::select! {
            next = entries.recv() => match next {
                Some(entry) => entry,
                None => return,
            },
            _ = prune.tick() => {
                let before = time::OffsetDateTime::now_utc() - config.retention;
                match store.prune_inbound(before).await {
                    Ok(n) if n > 0 => tracing::info!(pruned = n, "inbound log pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning the inbound log failed"),
                }
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match entries.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let size = batch.len() as u64;
        let dropped: Vec<(i64, u64)> =
            std::mem::take(&mut *early.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        match store.record_inbound(batch, dropped, caps).await {
            Ok(written) => {
                if written.stored < size {
                    metrics::inbound_dropped("cap", size - written.stored);
                }
                tracing::debug!(
                    stored = written.stored,
                    dropped = written.dropped,
                    "inbound log written"
                );
            }
            Err(e) => {
                metrics::inbound_dropped("store_error", size);
                tracing::warn!(error = %e, entries = size, "writing the inbound log failed");
            }
        }
    }
}
