//! The read pool: connections reads borrow one at a time, run on tokio's
//! blocking threads so a slow query never stalls the async runtime.
//!
//! With write-ahead logging a reader sees the last committed state and
//! neither waits for the writer nor holds it up. Up to `keep` connections
//! stay open between reads; a burst beyond that opens extra ones that are
//! closed after use.

use std::sync::{Mutex, PoisonError};

use super::super::error::Result;
use super::connection::Conn;

/// Opens one more read connection.
pub(super) type OpenReader = Box<dyn Fn() -> Result<Conn> + Send + Sync>;

/// Idle read connections and the means to open more.
pub(super) struct ReadPool {
    open: OpenReader,
    idle: Mutex<Vec<Conn>>,
    keep: usize,
}

impl ReadPool {
    /// A pool keeping up to `keep` idle connections; opens the first one now
    /// so a database that cannot be read is reported at start-up.
    pub(super) fn new(open: OpenReader, keep: usize) -> Result<Self> {
        let first = open()?;
        let pool = Self {
            open,
            idle: Mutex::new(Vec::with_capacity(keep)),
            keep,
        };
        pool.give_back(first);
        Ok(pool)
    }

    /// Runs `f` on a borrowed connection (blocking: call from a blocking
    /// thread). A connection whose read panicked is not returned.
    pub(super) fn with<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let popped = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match popped {
            Some(conn) => conn,
            None => (self.open)()?,
        };
        let result = f(&conn);
        self.give_back(conn);
        result
    }

    /// Connections idle right now.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::super::super::StoreError;
    use super::*;

    fn counting_pool(keep: usize) -> (ReadPool, Arc<AtomicUsize>) {
        let opened = Arc::new(AtomicUsize::new(0));
        let count = opened.clone();
        let open: OpenReader = Box::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
            Conn::open_in_memory().map_err(|e| StoreError::corrupt(e.to_string()))
        });
        (ReadPool::new(open, keep).unwrap(), opened)
    }

    #[test]
    fn reuses_idle_connections() {
        let (pool, opened) = counting_pool(2);
        for _ in 0..10 {
            let n = pool.with(|b| b.list_instances()).unwrap();
            assert!(n.is_empty());
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[test]
    fn a_burst_opens_extra_connections_and_keeps_only_some() {
        let (pool, opened) = counting_pool(1);
        pool.with(|_| pool.with(|_| pool.with(|b| b.list_instances())))
            .unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 3);
        assert_eq!(pool.idle_count(), 1);
    }

    #[test]
    fn errors_from_the_read_are_returned_and_the_connection_kept() {
        let (pool, _) = counting_pool(1);
        let err = pool
            .with(|_| -> Result<()> { Err(StoreError::closed()) })
            .unwrap_err();
        assert_eq!(err.to_string(), "the store is closed");
        assert_eq!(pool.idle_count(), 1);
    }
}
