//! A transaction whose `BEGIN` goes out with its first statements.
//!
//! tokio-postgres' `Transaction` waits for its `BEGIN` before anything
//! else is sent, one round trip of its own. A hot path that knows its first
//! statements sends them in the same write ([pipelining]): a
//! [`Pipelined`] transaction's [`Pipelined::opened`] is awaited together
//! with (and polled ahead of) those statements. The server still runs
//! everything one statement at a time, in the order sent.
//!
//! [pipelining]: https://docs.rs/tokio-postgres/0.7/tokio_postgres/#pipelining

use deadpool_postgres::Object;
use futures_util::FutureExt as _;

use super::super::error::Result;

/// A transaction begun with its first statements. Like a `Transaction`,
/// it is rolled back if dropped before [`Pipelined::commit`] or
/// [`Pipelined::rollback`].
pub(super) struct Pipelined<'a> {
    client: &'a Object,
    open: bool,
}

impl<'a> Pipelined<'a> {
    /// A transaction on `client`, begun by awaiting [`Pipelined::opened`]
    /// together with (and ahead of) its first statements.
    pub(super) fn begin(client: &'a Object) -> Self {
        Self { client, open: true }
    }

    /// Sends `BEGIN`; polled first in a join, it goes out before the
    /// join's other statements.
    pub(super) async fn opened(&self) -> Result<()> {
        self.client.batch_execute("BEGIN").await?;
        Ok(())
    }

    /// Commits (a transaction a statement failed in is rolled back).
    pub(super) async fn commit(mut self) -> Result<()> {
        self.open = false;
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }

    /// Rolls back.
    pub(super) async fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.client.batch_execute("ROLLBACK").await?;
        Ok(())
    }
}

impl Drop for Pipelined<'_> {
    fn drop(&mut self) {
        if self.open {
            // The first poll queues the message on the connection, as
            // tokio-postgres' own `Transaction` does when dropped; the
            // answer is not awaited.
            let _ = self.client.batch_execute("ROLLBACK").now_or_never();
        }
    }
}
