//! Several replicas on one PostgreSQL database: who this replica is, which
//! poll partitions and periodic jobs it owns, and who else is alive.
//!
//! Webhooks, the management API and delivery need no owner: any replica
//! serves any request, and delivery claims rows with `SKIP LOCKED` and
//! lease tokens. Polls and maintenance do need one, and this module gives
//! each exactly one owner at a time:
//!
//! - **Heartbeats.** Every `heartbeat_secs` a replica stamps its row in
//!   `replicas`; a replica is alive while its last heartbeat is within
//!   `lease_secs` (the database's clock judges, never a replica's).
//! - **Partitions.** Instances are spread over [`PARTITIONS`] partitions by
//!   [`partition_of`], a fixed hash of the instance id. With each heartbeat
//!   a replica renews the partitions it holds, gives up those beyond its
//!   fair share `ceil(256 / replicas alive)` and acquires free or expired
//!   ones up to it, so joining replicas get their share within a few
//!   heartbeats and a dead replica's partitions are taken over once its
//!   leases expire (within `lease_secs` plus a heartbeat). The poller
//!   schedules only instances of partitions this replica holds.
//! - **Epochs and fencing.** Every change of a partition's owner raises its
//!   epoch. A poll captures its partition's [`Fence`] (owner, epoch) when
//!   it starts, and its pages are written only while the partition still
//!   has that owner and epoch under an unexpired lease, checked inside the
//!   page's own transaction. A replica that was paused past its lease and
//!   wakes up mid-poll therefore writes nothing: its page is *fenced*.
//! - **Singletons.** Periodic jobs that must run once for the whole
//!   deployment (retention pruning, the outbox depth gauge) run only on
//!   the replica holding the [`MAINTENANCE`] lease, renewed with the
//!   heartbeat and taken over by another replica after it expires.
//!
//! - **Run now, anywhere.** `POST /instances/{id}/poller` on a replica
//!   that does not hold the instance's partition is handed to the owner
//!   with `NOTIFY plugboard_poll_run, '<id>'` ([`Cluster::hand_over_run`]);
//!   the owner's poller runs it when the notification reaches it.
//!
//! On SQLite the store belongs to one process: this replica holds every
//! partition and singleton, and nothing is fenced.

mod heartbeat;
mod identity;
mod run_routing;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

use crate::store::{Fence, Leases, ReplicaRecord, Store, PARTITIONS};

pub use crate::store::partition_of;
pub use identity::{check_replica_id, generated_replica_id};
pub use run_routing::{HandedOver, POLL_RUN_CHANNEL};

/// The singleton lease of retention pruning and the outbox depth gauge.
pub const MAINTENANCE: &str = "maintenance";

/// This replica's identity and lease timings.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// This replica's id.
    pub replica_id: String,
    /// Time between heartbeats.
    pub heartbeat: Duration,
    /// How long a lease lasts without renewal (more than two heartbeats).
    pub lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            replica_id: generated_replica_id(),
            heartbeat: Duration::from_secs(2),
            lease: Duration::from_secs(10),
        }
    }
}

/// What this replica holds right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Held partitions with the epoch each was acquired at.
    pub partitions: BTreeMap<u16, i64>,
    /// Held singletons.
    pub singletons: BTreeSet<String>,
}

impl Holdings {
    /// Everything: what the only process on an unshared store holds.
    fn everything() -> Self {
        Self {
            partitions: (0..PARTITIONS).map(|p| (p, 0)).collect(),
            singletons: BTreeSet::from([MAINTENANCE.to_string()]),
        }
    }
}

struct Inner {
    config: ClusterConfig,
    started_at: OffsetDateTime,
    leases: Option<Arc<dyn Leases>>,
    holdings: watch::Sender<Holdings>,
    recheck: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The handle the poller, maintenance and the API ask about ownership.
/// Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl Cluster {
    /// Starts heartbeating on a shared store (PostgreSQL); on SQLite this
    /// replica simply holds everything.
    pub fn start(config: ClusterConfig, store: &Store) -> Self {
        let leases = store.leases();
        let initial = if leases.is_some() {
            Holdings::default()
        } else {
            Holdings::everything()
        };
        crate::telemetry::metrics::partitions_held(initial.partitions.len());
        let cluster = Self {
            inner: Arc::new(Inner {
                config,
                started_at: OffsetDateTime::now_utc(),
                leases,
                holdings: watch::channel(initial).0,
                recheck: Notify::new(),
                task: Mutex::new(None),
            }),
        };
        if let Some(leases) = cluster.inner.leases.clone() {
            let task = tokio::spawn(heartbeat::run(cluster.inner.clone(), leases));
            *cluster.inner.task.lock().expect("cluster task lock") = Some(task);
        }
        cluster
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.inner.config.replica_id
    }

    /// The lease timings.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// Whether this replica polls instance `id` (holds its partition).
    pub fn holds(&self, instance_id: i64) -> bool {
        let partition = partition_of(instance_id);
        self.inner
            .holdings
            .borrow()
            .partitions
            .contains_key(&partition)
    }

    /// The fence a poll of instance `id` starting now writes under: `None`
    /// on an unshared store (nothing to fence) and, on a shared one, when
    /// the partition is not held (every write is then refused by a fence
    /// no one holds).
    pub fn fence(&self, instance_id: i64) -> Option<Fence> {
        self.inner.leases.as_ref()?;
        let partition = partition_of(instance_id);
        let epoch = self
            .inner
            .holdings
            .borrow()
            .partitions
            .get(&partition)
            .copied();
        Some(Fence {
            partition,
            owner: self.inner.config.replica_id.clone(),
            epoch: epoch.unwrap_or(-1),
        })
    }

    /// Whether this replica runs the singleton job `name` right now.
    pub fn holds_singleton(&self, name: &str) -> bool {
        self.inner.holdings.borrow().singletons.contains(name)
    }

    /// What this replica holds, updated after every heartbeat that changed it.
    pub fn subscribe(&self) -> watch::Receiver<Holdings> {
        self.inner.holdings.subscribe()
    }

    /// Asks for a heartbeat now (e.g. after a write was fenced, to learn
    /// what this replica still holds).
    pub fn recheck(&self) {
        self.inner.recheck.notify_one();
    }

    /// The replicas alive, this one included, with what each holds.
    pub async fn replicas(&self) -> crate::store::Result<Vec<ReplicaRecord>> {
        match &self.inner.leases {
            Some(leases) => leases.replicas(self.inner.config.lease).await,
            None => {
                let held = self.inner.holdings.borrow().clone();
                Ok(vec![ReplicaRecord {
                    id: self.inner.config.replica_id.clone(),
                    started_at: self.inner.started_at,
                    last_seen: OffsetDateTime::now_utc(),
                    partitions: held.partitions.into_keys().collect(),
                    singletons: held.singletons.into_iter().collect(),
                }])
            }
        }
    }

    /// Stops heartbeating and gives every lease up, so the other replicas
    /// take over at once instead of after expiry.
    pub async fn stop(&self) {
        let task = self.inner.task.lock().expect("cluster task lock").take();
        let Some(task) = task else { return };
        task.abort();
        let _ = task.await;
        self.inner.holdings.send_replace(Holdings::default());
        if let Some(leases) = &self.inner.leases {
            match leases.release(&self.inner.config.replica_id).await {
                Ok(()) => tracing::info!("leases released"),
                Err(e) => tracing::warn!(error = %e, "releasing leases failed; they expire"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
