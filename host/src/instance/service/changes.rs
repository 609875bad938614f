//! The change channel: every created, changed or deleted instance is
//! announced here as an [`InstanceChange`], and whoever keeps something
//! derived from instances (the poller's plans, delivery's dispatcher)
//! subscribes instead of being called by the code that made the change.
//!
//! A change made by this process is published by the
//! [`InstanceService`](super::InstanceService) after the write, and the
//! write's caller waits until every subscriber has applied it (so a client
//! reading right after its write sees the effect everywhere). A change made
//! elsewhere — another process on the same database, announced by a database
//! notification — is fed in with
//! [`InstanceService::publish`](super::InstanceService::publish), which
//! nobody waits on. Subscribers treat both alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

/// Changes a slow subscriber may fall behind by before it is told it
/// missed some (and then re-reads everything).
const CAPACITY: usize = 1024;

/// One instance was created, changed or deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceChange {
    /// The instance id.
    pub id: i64,
    /// Its version after the change; `None` when it was deleted.
    pub version: Option<i64>,
}

/// Counts down the subscribers that still have to apply one change.
struct Pending {
    remaining: AtomicUsize,
    done: Notify,
}

/// A change as a subscriber receives it. Call [`Notice::applied`] once its
/// effect is in place (dropping it unapplied counts as applied too, so a
/// failing subscriber never holds a writer up beyond the wait's bound).
pub struct Notice {
    /// What changed.
    pub change: InstanceChange,
    pending: Option<Arc<Pending>>,
}

impl Notice {
    /// Marks the change applied by this subscriber.
    pub fn applied(self) {}
}

impl Drop for Notice {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            if p.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                p.done.notify_one();
            }
        }
    }
}

/// What travels on the broadcast channel: a change, or (`None`) word
/// that anything may have changed.
#[derive(Clone)]
struct Sent {
    change: Option<InstanceChange>,
    pending: Option<Arc<Pending>>,
}

/// What a subscriber gets next.
pub enum Received {
    /// One change.
    Change(Notice),
    /// The subscriber fell behind and missed changes: it should re-read
    /// every instance.
    Missed,
    /// Nobody can publish any more.
    Closed,
}

/// A subscription to the change channel.
pub struct Subscription(broadcast::Receiver<Sent>);

impl Subscription {
    /// The next change (waits for one).
    pub async fn recv(&mut self) -> Received {
        match self.0.recv().await {
            Ok(Sent {
                change: Some(change),
                pending,
            }) => Received::Change(Notice { change, pending }),
            Ok(Sent { change: None, .. }) => Received::Missed,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "an instance change subscriber fell behind");
                Received::Missed
            }
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}

/// The channel itself. Cheap to clone.
#[derive(Clone)]
pub struct InstanceChanges(broadcast::Sender<Sent>);

impl Default for InstanceChanges {
    fn default() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }
}

impl InstanceChanges {
    /// A new subscription, receiving every change published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription(self.0.subscribe())
    }

    /// Announces `change` without waiting for anyone.
    pub fn announce(&self, change: InstanceChange) {
        let _ = self.0.send(Sent {
            change: Some(change),
            pending: None,
        });
    }

    /// Announces that any instance may have changed (changes were missed):
    /// every subscriber receives [`Received::Missed`] and re-reads all.
    pub fn announce_all(&self) {
        let _ = self.0.send(Sent {
            change: None,
            pending: None,
        });
    }

    /// Announces `change` and waits until every subscriber has applied it,
    /// or `bound` has passed (logged: a subscriber is stuck).
    pub async fn announce_and_wait(&self, change: InstanceChange, bound: Duration) {
        let subscribers = self.0.receiver_count();
        if subscribers == 0 {
            return;
        }
        let pending = Arc::new(Pending {
            remaining: AtomicUsize::new(subscribers),
            done: Notify::new(),
        });
        let done = pending.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        let sent = Sent {
            change: Some(change),
            pending: Some(pending.clone()),
        };
        if self.0.send(sent).is_err() {
            return;
        }
        // The copy kept in the channel's ring is not a subscriber's: only
        // the receivers count down.
        if pending.remaining.load(Ordering::Acquire) == 0 {
            return;
        }
        if tokio::time::timeout(bound, done).await.is_err() {
            tracing::warn!(
                instance = change.id,
                waiting_for = pending.remaining.load(Ordering::Acquire),
                "instance change not applied by every subscriber in time"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_writer_waits_until_every_subscriber_applied_its_change() {
        let changes = InstanceChanges::default();
        let applied = Arc::new(AtomicUsize::new(0));
        for delay in [10, 50] {
            let mut sub = changes.subscribe();
            let applied = applied.clone();
            tokio::spawn(async move {
                while let Received::Change(notice) = sub.recv().await {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    applied.fetch_add(1, Ordering::SeqCst);
                    notice.applied();
                }
            });
        }
        let change = InstanceChange {
            id: 7,
            version: Some(2),
        };
        changes
            .announce_and_wait(change, Duration::from_secs(10))
            .await;
        assert_eq!(applied.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn announced_changes_reach_subscribers_without_anyone_waiting() {
        let changes = InstanceChanges::default();
        let mut sub = changes.subscribe();
        let change = InstanceChange {
            id: 3,
            version: None,
        };
        changes.announce(change);
        match sub.recv().await {
            Received::Change(n) => assert_eq!(n.change, change),
            _ => panic!("expected the change"),
        }
    }
}
