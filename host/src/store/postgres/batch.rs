//! Group commit on PostgreSQL: concurrent receipts share transactions.
//!
//! Callers queue receipts on a channel and wait for their answer. One task
//! takes the first waiting receipt, waits for a free commit slot (two
//! batches commit at once, each on its own pooled connection), then drains
//! whatever else queued meanwhile into the same batch. Under load the queue
//! fills while the slots are busy, so batches grow; when idle a lone
//! receipt commits at once.
//!
//! A batch is one transaction of four statements whatever its size, sent
//! to the server with its `BEGIN` all at once (pipelined, see
//! [`super::receipts::stage_at_once`] and [`Pipelined`]), then its
//! `COMMIT`: two round trips instead of six (`ingest_load` with the Rust
//! element: about a fifth more webhooks per second). There are no
//! savepoints: a savepoint per receipt
//! would cost a subtransaction each, and past 64 of them in one
//! transaction PostgreSQL's per-backend subtransaction cache overflows and
//! every snapshot in the cluster gets slower. If the batch's transaction
//! fails (a receipt for a deleted instance, a deadlock with another
//! writer), it is rolled back and each of its receipts is written again in
//! a transaction of its own, so one bad receipt fails alone and its
//! neighbours are stored. If the connection itself is lost, every receipt
//! of the batch fails as unavailable (the caller answers 503).
//!
//! After a batch that stored notifications commits, and after its callers
//! are answered, the [`Announcer`] is asked to tell listeners on other
//! connections (other replicas) that deliveries are due, with a
//! `pg_notify` that is never part of the hot transaction. In-process
//! delivery is woken by the callers themselves.

use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::super::counters::Counters;
use super::super::error::{ErrorKind, Result, StoreError};
use super::super::receipt::{NewReceipt, ReceiptOutcome, ReceiptStatus};
use super::super::StoreStats;
use super::announce::Announcer;
use super::error::is_transient;
use super::pipelined::Pipelined;
use super::TRIES;

/// Most receipts in one transaction.
const MAX_BATCH: usize = 512;

/// Batches committing at once (each holds a pooled connection).
///
/// Two: one batch commits while the next gathers, so under load batches
/// grow instead of more of them running side by side. Every batch costs
/// the database the same fixed work (a transaction, four statements to
/// plan and start, a commit) whatever its size. With 64 concurrent
/// webhooks, four slots made batches of about 8 receipts, two about 15,
/// one about 32 (`ingest_load`, Rust element): the database's CPU per
/// webhook fell from about 210 µs with four to about 160 µs with two,
/// and ingest rose by about a tenth. One slot cut the database's CPU
/// further but left the commit's wait unoverlapped, and ingest fell back.
const COMMIT_SLOTS: usize = 2;

/// Receipts that may wait before callers are held back.
const QUEUE_DEPTH: usize = MAX_BATCH * 8;

/// A receipt waiting for its batch, with its caller's answer.
type Pending = (NewReceipt, oneshot::Sender<Result<ReceiptOutcome>>);

/// The handle to the group-commit task.
pub(super) struct Batcher {
    queue: mpsc::Sender<Pending>,
    counters: Arc<Counters>,
}

impl Batcher {
    /// Starts the group-commit task on the current runtime.
    pub(super) fn start(pool: Pool, announcer: Announcer) -> Self {
        let (queue, receipts) = mpsc::channel(QUEUE_DEPTH);
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(pool, receipts, counters.clone(), announcer));
        Self { queue, counters }
    }

    /// Queues a receipt for the next batch and waits until it is committed.
    pub(super) async fn record(&self, receipt: NewReceipt) -> Result<ReceiptOutcome> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((receipt, reply))
            .await
            .map_err(|_| StoreError::closed())?;
        answer.await.map_err(|_| StoreError::closed())?
    }

    /// The counters so far.
    pub(super) fn stats(&self) -> StoreStats {
        self.counters
            .stats(self.queue.max_capacity() - self.queue.capacity())
    }
}

/// The group-commit loop: ends when every handle is gone and the queue is
/// drained.
async fn run(
    pool: Pool,
    mut receipts: mpsc::Receiver<Pending>,
    counters: Arc<Counters>,
    announcer: Announcer,
) {
    let slots = Arc::new(Semaphore::new(COMMIT_SLOTS));
    while let Some(first) = receipts.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receipts.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        tokio::spawn(commit(
            pool.clone(),
            batch,
            counters.clone(),
            announcer.clone(),
            slot,
        ));
    }
}

/// Writes one batch, answers its callers, then announces new notifications.
async fn commit(
    pool: Pool,
    batch: Vec<Pending>,
    counters: Arc<Counters>,
    announcer: Announcer,
    _slot: OwnedSemaphorePermit,
) {
    let (receipts, replies): (Vec<NewReceipt>, Vec<_>) = batch.into_iter().unzip();
    let results = match pool.get().await {
        Ok(mut client) => write(&mut client, &receipts, &counters).await,
        Err(e) => {
            let e = StoreError::from(e);
            let results: Vec<_> = receipts.iter().map(|_| Err(e.for_batch())).collect();
            counters.count(&results);
            results
        }
    };
    let notify = results
        .iter()
        .zip(&receipts)
        .any(|(result, receipt)| stored_notifications(result, receipt));
    tracing::trace!(receipts = receipts.len(), "receipt batch written");
    for (result, reply) in results.into_iter().zip(replies) {
        let _ = reply.send(result);
    }
    if notify {
        announcer.due();
    }
}

/// Whether `result` stored notifications of `receipt`.
pub(super) fn stored_notifications(result: &Result<ReceiptOutcome>, receipt: &NewReceipt) -> bool {
    matches!(result, Ok(ReceiptOutcome::Stored { .. }))
        && matches!(&receipt.outcome, ReceiptStatus::Accepted { notifications } if !notifications.is_empty())
}

/// The batch in one transaction, or, if that fails, each receipt in its
/// own; counted as committed.
async fn write(
    client: &mut Object,
    receipts: &[NewReceipt],
    counters: &Counters,
) -> Vec<Result<ReceiptOutcome>> {
    let whole = commit_receipts(client, receipts).await;
    let results: Vec<Result<ReceiptOutcome>> = match whole {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if receipts.len() == 1 || client.is_closed() => {
            if receipts.len() > 1 {
                tracing::error!(error = %e, receipts = receipts.len(), "receipt batch not committed");
            }
            receipts.iter().map(|_| Err(e.for_batch())).collect()
        }
        Err(e) => {
            tracing::debug!(error = %e, receipts = receipts.len(), "receipt batch failed; writing its receipts one by one");
            let mut results = Vec::with_capacity(receipts.len());
            for receipt in receipts {
                let result = commit_one(client, receipt).await;
                counters.count(std::slice::from_ref(&result));
                results.push(result);
            }
            return results;
        }
    };
    counters.count(&results);
    results
}

/// One receipt in a transaction of its own, tried again after a deadlock
/// or serialization failure.
async fn commit_one(client: &mut Object, receipt: &NewReceipt) -> Result<ReceiptOutcome> {
    let mut tries = 0;
    loop {
        tries += 1;
        match commit_receipts(client, std::slice::from_ref(receipt)).await {
            Ok(mut outcomes) => {
                return outcomes
                    .pop()
                    .ok_or_else(|| StoreError::corrupt("a receipt's write returned no outcome"))
            }
            Err(e)
                if tries < TRIES
                    && !client.is_closed()
                    && (is_transient(&e) || e.kind() == ErrorKind::Unavailable) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes receipts in one transaction and commits it; on error nothing of
/// it is stored (dropping the transaction rolls it back).
///
/// The transaction's `BEGIN` and the batch's statements are first sent all
/// at once ([`super::receipts::stage_at_once`]), then its `COMMIT`: two
/// round trips. Only if one of its receipts is a repeat or its instance is
/// gone is that rolled back and the batch written statement by statement
/// ([`super::receipts::stage`]).
async fn commit_receipts(
    client: &mut Object,
    receipts: &[NewReceipt],
) -> Result<Vec<ReceiptOutcome>> {
    {
        let tx = Pipelined::begin(client);
        let ((), staged) = futures_util::future::try_join(
            tx.opened(),
            super::receipts::stage_at_once(&*client, receipts),
        )
        .await?;
        match staged {
            Some(outcomes) => {
                tx.commit().await?;
                return Ok(outcomes);
            }
            None => tx.rollback().await?,
        }
    }
    let tx = client.transaction().await?;
    let outcomes = super::receipts::stage(&tx, receipts).await?;
    tx.commit().await?;
    Ok(outcomes)
}
