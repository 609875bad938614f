//! The deliveries in flight, so that a shutdown can let them finish up to a
//! deadline and account for the ones it abandons.
//!
//! An abandoned delivery (still waiting for its receiver at the deadline)
//! is recorded as an attempt that ended without an answer and is due again
//! at once: after a restart it is sent again, with the same `eventId`, as
//! at-least-once delivery requires.

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use time::OffsetDateTime;
use tokio::task::{Id, JoinError, JoinSet};

use crate::store::{AttemptNext, AttemptRecord};

/// Why an abandoned attempt has no answer, as the event log shows it.
const ABANDONED: &str = "abandoned at shutdown before the receiver answered";

/// A delivery started, as far as a shutdown needs to know.
struct Started {
    notification_id: String,
    lease: String,
    at: OffsetDateTime,
    clock: Instant,
}

/// The running delivery tasks.
#[derive(Default)]
pub(super) struct InFlight {
    tasks: JoinSet<()>,
    started: HashMap<Id, Started>,
}

impl InFlight {
    /// Runs the delivery of notification `notification_id`, claimed under
    /// `lease`, as a task.
    pub(super) fn spawn(
        &mut self,
        notification_id: String,
        lease: String,
        delivery: impl Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(delivery);
        self.started.insert(
            handle.id(),
            Started {
                notification_id,
                lease,
                at: OffsetDateTime::now_utc(),
                clock: Instant::now(),
            },
        );
    }

    /// Forgets the deliveries that have finished.
    pub(super) fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(e) => e.id(),
            };
            self.started.remove(&id);
        }
    }

    /// Waits for every delivery until `deadline`, then aborts the rest and
    /// returns their records (due again at once).
    pub(super) async fn drain(mut self, deadline: tokio::time::Instant) -> Vec<AttemptRecord> {
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(done)) => self.finished(done),
                Ok(None) => break,
                Err(_) => {
                    self.tasks.abort_all();
                    while let Some(done) = self.tasks.join_next_with_id().await {
                        self.finished(done);
                    }
                    break;
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        self.started
            .into_values()
            .map(|s| AttemptRecord {
                notification_id: s.notification_id,
                lease: s.lease,
                attempted_at: s.at,
                status_code: None,
                error: Some(ABANDONED.into()),
                latency_ms: u32::try_from(s.clock.elapsed().as_millis()).unwrap_or(u32::MAX),
                response_body: bytes::Bytes::new(),
                next: AttemptNext::RetryAt(now),
            })
            .collect()
    }

    /// A task ended: completed ones recorded their own attempt; aborted ones
    /// stay listed as abandoned.
    fn finished(&mut self, done: Result<(Id, ()), JoinError>) {
        if let Ok((id, ())) = done {
            self.started.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn finished_deliveries_are_kept_and_stuck_ones_abandoned() {
        let mut in_flight = InFlight::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        in_flight.spawn("quick".into(), "lease".into(), async {
            let _ = released.await;
        });
        in_flight.spawn("stuck".into(), "lease".into(), std::future::pending());
        release.send(()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let abandoned = in_flight.drain(deadline).await;
        assert_eq!(abandoned.len(), 1);
        assert_eq!(abandoned[0].notification_id, "stuck");
        assert_eq!(abandoned[0].error.as_deref(), Some(ABANDONED));
        assert!(matches!(abandoned[0].next, AttemptNext::RetryAt(_)));
    }

    #[tokio::test]
    async fn reaping_forgets_what_finished() {
        let mut in_flight = InFlight::default();
        in_flight.spawn("a".into(), "lease".into(), async {});
        while !in_flight.tasks.is_empty() {
            in_flight.reap();
            tokio::task::yield_now().await;
        }
        assert!(in_flight.started.is_empty());
    }
}
