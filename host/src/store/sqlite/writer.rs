//! The writer thread: the one owner of the write connection, and the group
//! commit that lets many concurrent webhooks share one `fsync`.
//!
//! Callers queue commands on a bounded channel and wait on a oneshot reply.
//! The thread takes the first command, drains whatever else is already
//! queued (up to `max_batch` receipts and poll pages), writes those receipts
//! in one transaction, the poll pages in another, and answers each caller.
//! Under load the queue fills while a commit is on disk, so the next batch
//! is large; when idle a lone receipt commits at once. Other writes
//! (instance changes) run between batches, in the order they were queued.
//!
//! A commit costs about the same whatever it holds: every table and index
//! a receipt touches has at least one page written to the log. When the
//! disk is fast and webhooks arrive slower than the disk commits (an
//! element in an interpreted language, say), batches stay small and the
//! log is written several times per webhook. So, like PostgreSQL's
//! `commit_delay` with `commit_siblings`, once the batch before held two
//! or more receipts (webhooks are arriving together) the writer waits
//! `commit_delay` before committing a batch that is not full, and what
//! arrived meanwhile joins it. After an idle spell the first receipt
//! commits at once.
//!
//! A receipt handed over is written even if its caller stops waiting. When
//! the last handle is dropped the thread finishes what is queued and exits,
//! and the drop waits for it, so the database is closed cleanly.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::super::counters::Counters;
use super::super::error::{Result, StoreError};
use super::super::poll::{PollOutcome, PollWrite};
use super::super::receipt::{NewReceipt, ReceiptOutcome};
use super::super::StoreStats;
use super::connection::Conn;

/// Work for the writer other than receipts: runs on the write connection
/// between batches.
type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// What callers send the writer thread.
enum Command {
    /// Store a receipt as part of the next batch (boxed: receipts are large
    /// and the queue holds many commands).
    Receipt {
        receipt: Box<NewReceipt>,
        reply: oneshot::Sender<Stored>,
    },
    /// Store a poll page as part of the next batch.
    Poll {
        write: Box<PollWrite>,
        reply: oneshot::Sender<Result<PollOutcome>>,
    },
    /// Run a write on its own, between batches.
    Job(Job),
}

/// The writer's answer for one receipt, with the receipt itself handed
/// back: the caller's thread allocated it, and freeing it there keeps that
/// work (and the allocator's cross-thread locking) off the writer thread,
/// which every receipt has to pass through.
type Stored = (Result<ReceiptOutcome>, NewReceipt);

/// The handle to the writer thread.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// How the writer groups receipts into transactions.
#[derive(Clone, Copy, Debug)]
pub(super) struct Batching {
    /// Most receipts (and, separately, poll pages) in one transaction.
    pub max_batch: usize,
    /// How long a batch that is not full waits for more receipts when the
    /// batch before held two or more; zero never waits.
    pub commit_delay: Duration,
}

impl Batching {
    /// Whether a batch of `receipts`, after one of `before`, waits for more.
    fn waits(&self, before: usize, receipts: usize) -> bool {
        !self.commit_delay.is_zero() && before >= 2 && receipts > 0 && receipts < self.max_batch
    }
}

impl Writer {
    /// Starts the writer thread, which owns `backend` from now on.
    pub(super) fn start(
        backend: Conn,
        batching: Batching,
        queue_depth: usize,
    ) -> std::io::Result<Self> {
        let (queue, commands) = mpsc::channel(queue_depth.max(1));
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let batching = Batching {
            max_batch: batching.max_batch.max(1),
            ..batching
        };
        let thread = std::thread::Builder::new()
            .name("plugboard-store-writer".into())
            .spawn(move || run(backend, commands, batching, &thread_counters))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            counters,
        })
    }

    /// Queues a receipt for the next batch and waits until it is committed.
    pub(super) async fn record(&self, receipt: NewReceipt) -> Result<ReceiptOutcome> {
        let (reply, answer) = oneshot::channel();
        let receipt = Box::new(receipt);
        self.send(Command::Receipt { receipt, reply }).await?;
        let (result, receipt) = answer.await.map_err(|_| StoreError::closed())?;
        drop(receipt);
        result
    }

    /// Queues a poll page for the next batch and waits until it is committed.
    pub(super) async fn record_poll(&self, write: PollWrite) -> Result<PollOutcome> {
        let (reply, answer) = oneshot::channel();
        let write = Box::new(write);
        self.send(Command::Poll { write, reply }).await?;
        answer.await.map_err(|_| StoreError::closed())?
    }

    /// Runs `f` on the write connection and waits for its result.
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |backend| {
            let _ = reply.send(f(backend));
        });
        self.send(Command::Job(job)).await?;
        answer.await.map_err(|_| StoreError::closed())?
    }

    /// The counters so far.
    pub(super) fn stats(&self) -> StoreStats {
        self.counters.stats(
            self.queue
                .as_ref()
                .map_or(0, |q| q.max_capacity() - q.capacity()),
        )
    }

    async fn send(&self, command: Command) -> Result<()> {
        let queue = self.queue.as_ref().ok_or(StoreError::closed())?;
        queue.send(command).await.map_err(|_| StoreError::closed())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

/// A receipt waiting in the current batch, with its caller's reply.
type Pending = (NewReceipt, oneshot::Sender<Stored>);

/// A poll page waiting in the current batch, with its caller's reply.
type PendingPoll = (PollWrite, oneshot::Sender<Result<PollOutcome>>);

/// The writer thread's loop: ends when every handle is gone.
fn run(
    mut backend: Conn,
    mut commands: mpsc::Receiver<Command>,
    batching: Batching,
    counters: &Counters,
) {
    let mut batch = Batch {
        receipts: Vec::with_capacity(batching.max_batch),
        polls: Vec::new(),
    };
    // Receipts in the batch committed before.
    let mut before = 0;
    while let Some(first) = commands.blocking_recv() {
        batch.take(Some(first), &mut commands, &mut backend, batching, counters);
        if batching.waits(before, batch.receipts.len()) {
            std::thread::sleep(batching.commit_delay);
            let next = commands.try_recv().ok();
            batch.take(next, &mut commands, &mut backend, batching, counters);
        }
        before = batch.receipts.len();
        commit_batch(&mut backend, &mut batch.receipts, counters);
        commit_polls(&mut backend, &mut batch.polls);
        backend.after_writes();
    }
}

/// The receipts and poll pages of the transaction being gathered.
struct Batch {
    receipts: Vec<Pending>,
    polls: Vec<PendingPoll>,
}

impl Batch {
    /// Adds `next` and whatever else is queued, up to `max_batch` receipts
    /// or poll pages; a job commits what was gathered so far, then runs.
    fn take(
        &mut self,
        mut next: Option<Command>,
        commands: &mut mpsc::Receiver<Command>,
        backend: &mut Conn,
        batching: Batching,
        counters: &Counters,
    ) {
        while let Some(command) = next {
            match command {
                Command::Receipt { receipt, reply } => self.receipts.push((*receipt, reply)),
                Command::Poll { write, reply } => self.polls.push((*write, reply)),
                Command::Job(job) => {
                    commit_batch(backend, &mut self.receipts, counters);
                    commit_polls(backend, &mut self.polls);
                    job(backend);
                    backend.after_writes();
                }
            }
            next = if self.receipts.len() < batching.max_batch
                && self.polls.len() < batching.max_batch
            {
                commands.try_recv().ok()
            } else {
                None
            };
        }
    }
}

/// Writes the pending poll pages in one transaction and answers each caller.
fn commit_polls(backend: &mut Conn, pending: &mut Vec<PendingPoll>) {
    if pending.is_empty() {
        return;
    }
    let (writes, replies): (Vec<PollWrite>, Vec<_>) = pending.drain(..).unzip();
    let results = backend.commit_polls(&writes);
    for (result, reply) in results.into_iter().zip(replies) {
        let _ = reply.send(result);
    }
    tracing::trace!(pages = writes.len(), "poll batch written");
}

/// Writes the pending receipts in one transaction and answers each caller.
/// Counters are updated before any caller hears back, so a caller that sees
/// its answer also sees it counted.
fn commit_batch(backend: &mut Conn, pending: &mut Vec<Pending>, counters: &Counters) {
    if pending.is_empty() {
        return;
    }
    let (receipts, replies): (Vec<NewReceipt>, Vec<_>) = pending.drain(..).unzip();
    let results = backend.commit_receipts(&receipts);
    counters.count(&results);
    tracing::trace!(receipts = receipts.len(), "receipt batch written");
    for ((result, reply), receipt) in results.into_iter().zip(replies).zip(receipts) {
        let _ = reply.send((result, receipt));
    }
}
