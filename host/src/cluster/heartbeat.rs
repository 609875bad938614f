//! The heartbeat task: every `heartbeat_secs` (or at once when asked), it
//! stamps this replica alive, balances its partitions to its fair share and
//! renews or takes the maintenance singleton, then publishes what it holds.
//!
//! When the database cannot be reached, what this replica holds is given
//! up locally once its last successful renewal is a lease old: by then
//! other replicas may own it, and polls would only be fenced.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Holdings, Inner, MAINTENANCE};
use crate::store::{Leases, PARTITIONS};

/// Runs until aborted.
pub(super) async fn run(inner: Arc<Inner>, leases: Arc<dyn Leases>) {
    let mut last_ok: Option<Instant> = None;
    loop {
        let sent = Instant::now();
        match beat(&inner, leases.as_ref()).await {
            Ok(held) => {
                last_ok = Some(sent);
                publish(&inner, held);
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                if last_ok.is_none_or(|at| sent.duration_since(at) >= inner.config.lease) {
                    publish(&inner, Holdings::default());
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(inner.config.heartbeat) => {}
            () = inner.recheck.notified() => {}
        }
    }
}

/// One heartbeat: alive, partitions balanced, singleton renewed.
async fn beat(inner: &Inner, leases: &dyn Leases) -> crate::store::Result<Holdings> {
    let id = &inner.config.replica_id;
    let lease = inner.config.lease;
    let alive = leases.heartbeat(id, inner.started_at, lease).await?;
    let held = leases
        .balance_partitions(id, lease, fair_share(alive))
        .await?;
    let mut holdings = Holdings {
        partitions: held.iter().map(|p| (p.partition, p.epoch)).collect(),
        ..Holdings::default()
    };
    if leases
        .hold_singleton(MAINTENANCE, id, lease)
        .await?
        .is_some()
    {
        holdings.singletons.insert(MAINTENANCE.to_string());
    }
    Ok(holdings)
}

/// The most partitions one of `alive` replicas takes: `ceil(256 / alive)`.
pub(super) fn fair_share(alive: usize) -> usize {
    usize::from(PARTITIONS).div_ceil(alive.max(1))
}

/// Publishes `held` if it changed, logging what changed.
fn publish(inner: &Inner, held: Holdings) {
    crate::telemetry::metrics::partitions_held(held.partitions.len());
    inner.holdings.send_if_modified(|current| {
        if *current == held {
            return false;
        }
        let gained = held
            .partitions
            .iter()
            .filter(|(p, e)| current.partitions.get(p) != Some(e))
            .count();
        let lost = current
            .partitions
            .iter()
            .filter(|(p, e)| held.partitions.get(p) != Some(e))
            .count();
        tracing::info!(
            held = held.partitions.len(),
            gained,
            lost,
            singletons = ?held.singletons,
            "partition leases changed"
        );
        *current = held;
        true
    });
}
