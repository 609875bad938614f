//! Checkpointing the write-ahead log on its own thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold: that commit, and every webhook waiting on the writer behind
//! it, stalls while tens of MiB are copied into the database and synced.
//! Here the writer connection never checkpoints on its own. After each round
//! of writes it wakes the checkpointer, which copies committed frames into
//! the database with a `PASSIVE` checkpoint (it takes no lock the writer
//! needs) at most every [`INTERVAL`].
//!
//! Under sustained writes a passive checkpoint never catches up with the
//! head of the log, so the log would not restart and would grow without
//! bound. When it holds more than `wal_catch_up_pages` (a store option),
//! the checkpointer asks
//! the writer to finish the job between two transactions: little is left
//! to copy by then, and the next write starts the log from its beginning.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Least time between two background checkpoints: commits in between are
/// copied together, with one sync of the database file.
const INTERVAL: Duration = Duration::from_millis(50);

/// What the writer and the checkpointer share.
#[derive(Default)]
struct Shared {
    /// Set by the checkpointer: the log is long, the writer should finish it.
    catch_up: AtomicBool,
    /// Set when the writer closes.
    stop: AtomicBool,
}

/// The checkpointer thread, seen from the writer connection.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread with its own connection to `path`; a log longer
    /// than `catch_up_frames` is finished by the writer.
    pub(super) fn start(
        path: &Path,
        busy_timeout: Duration,
        catch_up_frames: i64,
    ) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("plugboard-store-checkpoint".into())
            .spawn(move || run(&conn, &theirs, catch_up_frames))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Called by the writer after a round of writes: wakes the checkpointer
    /// and, when the log has grown long, checkpoints on `writer` itself.
    pub(super) fn after_writes(&self, writer: &Connection) {
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
        if self.shared.catch_up.swap(false, Ordering::Relaxed) {
            match passive_checkpoint(writer) {
                Ok((log, copied)) => {
                    tracing::debug!(log, copied, "write-ahead log caught up by the writer")
                }
                Err(e) => tracing::warn!(error = %e, "write-ahead log checkpoint failed"),
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                tracing::error!("store checkpoint thread panicked");
            }
        }
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: frames in the log and frames copied.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

fn run(conn: &Connection, shared: &Shared, catch_up_frames: i64) {
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::park();
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        match passive_checkpoint(conn) {
            Ok((log, _)) if log >= catch_up_frames => {
                shared.catch_up.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "write-ahead log checkpoint failed"),
        }
        std::thread::sleep(INTERVAL);
    }
}
