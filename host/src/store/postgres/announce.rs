//! Telling other processes that deliveries are due, at a bounded rate.
//!
//! After a commit that made notifications due, one `pg_notify` on
//! [`OUTBOX_CHANNEL`] wakes the deliveries of every other replica
//! listening (this process wakes its own directly). One per batch would
//! make every replica run a claim per batch of every other replica: with
//! three replicas the claims outnumbered the writes. So announcements are
//! coalesced: the first is sent at once, and those asked for during the
//! next [`INTERVAL`] become one more at its end. A replica that misses a
//! wake-up still claims on its own short poll.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;

/// The channel `pg_notify` announces new due notifications on.
pub(super) const OUTBOX_CHANNEL: &str = "plugboard_outbox";

/// The least time between two announcements of this process.
const INTERVAL: Duration = Duration::from_millis(20);

/// The handle asking for announcements; the task ends when every handle is
/// gone.
#[derive(Clone)]
pub(super) struct Announcer {
    asked: mpsc::Sender<()>,
}

impl Announcer {
    /// Starts the announcing task on the current runtime.
    pub(super) fn start(pool: Pool) -> Self {
        let (asked, requests) = mpsc::channel(1);
        tokio::spawn(run(pool, requests));
        Self { asked }
    }

    /// Asks for an announcement; never waits (one already asked for
    /// covers this one).
    pub(super) fn due(&self) {
        let _ = self.asked.try_send(());
    }
}

/// Sends one `pg_notify` per request, at most one per [`INTERVAL`].
async fn run(pool: Pool, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        send(&pool).await;
        tokio::time::sleep(INTERVAL).await;
    }
}

/// One `pg_notify`; a failure only costs the listeners a wake-up.
async fn send(pool: &Pool) {
    let sent = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let stmt = client
            .prepare_cached("SELECT pg_notify($1, '')")
            .await
            .map_err(|e| e.to_string())?;
        client
            .execute(&stmt, &[&OUTBOX_CHANNEL])
            .await
            .map_err(|e| e.to_string())
    };
    if let Err(e) = sent.await {
        tracing::debug!(error = %e, "announcing due notifications failed");
    }
}
