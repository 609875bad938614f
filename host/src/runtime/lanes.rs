//! Lanes for long calls, so that calls burning CPU never take every core
//! from the short calls and from the rest of the host.
//!
//! A webhook's plugin call takes well under a millisecond to a few
//! milliseconds of CPU. A call that has used [`LONG_CALL_AFTER`] of CPU is
//! a long call — an endless loop waiting for its deadline, a memory
//! blow-up, a heavy transform — and from then on it runs only while it
//! holds one of a few lanes: `long_call_lanes`, by default one fewer than
//! the machine's cores (at least one). At its next epoch tick a long call
//! without a lane waits, suspended, for one to free up; the wait is not
//! charged to its CPU deadline. It keeps its lane until it ends.
//!
//! So however many long calls are in flight, at least one core stays with
//! the host's own work (accepting, storing, delivering) and with short
//! calls, whose latency then barely moves (the `hostile` benchmark). The
//! price: long calls together get at most `long_call_lanes` cores.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry::metrics;

/// CPU time after which a call is a long call and needs a lane.
pub(crate) const LONG_CALL_AFTER: Duration = Duration::from_millis(20);

/// The runtime's lanes for long calls.
#[derive(Clone)]
pub(crate) struct LongCallLanes(Arc<Semaphore>);

impl LongCallLanes {
    /// `lanes` lanes (at least one).
    pub(crate) fn new(lanes: usize) -> Self {
        Self(Arc::new(Semaphore::new(lanes.max(1))))
    }

    /// The default number of lanes: one fewer than the cores this process
    /// may use, at least one.
    pub(crate) fn default_count() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |cores| cores.get())
            .saturating_sub(1)
            .max(1)
    }
}

/// A call's lane: none until the call runs long, then held until the call
/// ends. Shared between the call's store and the yields that wait for it.
#[derive(Clone, Default)]
pub(crate) struct Lane(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Lane {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<OwnedSemaphorePermit>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the call holds a lane.
    pub(crate) fn held(&self) -> bool {
        self.slot().is_some()
    }

    /// Waits for a lane of `lanes` (counted for `element`) and keeps it.
    pub(crate) async fn take(&self, lanes: &LongCallLanes, element: &str) {
        let permit = match lanes.0.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                metrics::plugin_long_call_waited(element);
                match lanes.0.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    // The semaphore is never closed; go on without a lane.
                    Err(_) => return,
                }
            }
        };
        *self.slot() = Some(permit);
    }

    /// Gives the lane back (the call ended).
    pub(crate) fn release(&self) {
        self.slot().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_call_waits_for_a_free_lane_and_keeps_it_until_released() {
        let lanes = LongCallLanes::new(1);
        let (first, second) = (Lane::default(), Lane::default());
        first.take(&lanes, "e").await;
        assert!(first.held());
        let waiting = {
            let (second, lanes) = (second.clone(), lanes.clone());
            tokio::spawn(async move { second.take(&lanes, "e").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !second.held(),
            "the only lane is taken, so the second call waits"
        );
        first.release();
        waiting.await.unwrap();
        assert!(second.held());
        assert!(!first.held());
    }

    #[test]
    fn there_is_always_at_least_one_lane() {
        assert!(LongCallLanes::default_count() >= 1);
        let lanes = LongCallLanes::new(0);
        assert_eq!(lanes.0.available_permits(), 1);
    }
}
