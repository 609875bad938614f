//! Changes made by other processes on the same database, taking effect
//! here: the store's database notifications (PostgreSQL `LISTEN/NOTIFY`)
//! feed the instance service's change channel and wake delivery.
//!
//! - `plugboard_instances` (`"<id>:<version>"` or `"<id>:deleted"`, sent
//!   by the writing transaction): published to the instance service, which
//!   ignores versions it already knows (this process's own writes), drops
//!   its cached copy and has the poller and delivery re-read the instance.
//! - `plugboard_outbox` (sent after notifications became due): wakes
//!   delivery, so a webhook accepted by another process is delivered
//!   without waiting for the claim poll.
//! - A resync (the listening connection was lost and is back, so
//!   notifications may have been missed) or a receiver that fell behind:
//!   every cached instance is dropped, subscribers re-read everything and
//!   delivery looks for due notifications.
//!
//! On SQLite nothing arrives and the task just waits.

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::delivery::Delivery;
use crate::instance::{InstanceChange, InstanceService};
use crate::store::{Notification, Store};

/// The channel instance writes are announced on.
const INSTANCES: &str = "plugboard_instances";
/// The channel new due notifications are announced on.
const OUTBOX: &str = "plugboard_outbox";

/// Starts following `store`'s notifications (subscribed before returning,
/// so nothing sent after this call is missed).
pub(super) fn start(
    store: &Store,
    instances: InstanceService,
    delivery: Delivery,
) -> JoinHandle<()> {
    let mut notifications = store.notifications();
    tokio::spawn(async move {
        loop {
            match notifications.recv().await {
                Ok(Notification::Message { channel, payload }) => match channel.as_str() {
                    INSTANCES => match parse_change(&payload) {
                        Some(change) => instances.publish(change).await,
                        None => {
                            tracing::warn!(%payload, "ignoring an instance notification that does not parse")
                        }
                    },
                    OUTBOX => delivery.wake(),
                    _ => {}
                },
                Ok(Notification::Resync) | Err(RecvError::Lagged(_)) => {
                    tracing::info!(
                        "re-reading every instance: database notifications may have been missed"
                    );
                    instances.resync();
                    delivery.wake();
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// Parses `"<id>:<version>"` or `"<id>:deleted"`.
fn parse_change(payload: &str) -> Option<InstanceChange> {
    let (id, version) = payload.split_once(':')?;
    let id = id.parse().ok()?;
    let version = match version {
        "deleted" => None,
        v => Some(v.parse().ok()?),
    };
    Some(InstanceChange { id, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_changes() {
        assert_eq!(
            parse_change("12:3"),
            Some(InstanceChange {
                id: 12,
                version: Some(3)
            })
        );
        assert_eq!(
            parse_change("12:deleted"),
            Some(InstanceChange {
                id: 12,
                version: None
            })
        );
        for bad in ["", "12", "x:1", "12:x", "12:"] {
            assert_eq!(parse_change(bad), None, "{bad}");
        }
    }
}
