//! Leases shared by replicas on one database: replica heartbeats, the poll
//! partitions each replica owns and the singleton jobs one replica runs.
//!
//! Only a database several processes share has them (PostgreSQL); the
//! embedded SQLite store belongs to one process, which owns everything, so
//! its backend offers no [`Leases`] at all. Every expiry is judged by the
//! database's clock, so replicas whose clocks disagree still agree on who
//! holds what. Each change of a partition's or singleton's owner raises its
//! `epoch`: a write that carries a [`Fence`] lands only while its partition
//! still has the owner and epoch the work started under.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::Result;

/// How many poll partitions the instances are spread over (a constant, not
/// a setting: changing it would move instances between owners).
pub const PARTITIONS: u16 = 256;

/// The poll partition of an instance: the SplitMix64 finalizer of its id,
/// modulo [`PARTITIONS`]. Fixed forever (every replica and every version
/// must agree), and mixing the bits spreads consecutive ids evenly.
pub fn partition_of(instance_id: i64) -> u16 {
    let mut z = instance_id as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % u64::from(PARTITIONS)) as u16
}

/// The lease a poll page is written under: the page lands only while
/// `partition` still belongs to `owner` at `epoch`, its lease unexpired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The instance's partition.
    pub partition: u16,
    /// The replica that owned it when the poll started.
    pub owner: String,
    /// The partition's epoch then.
    pub epoch: i64,
}

/// A partition this replica holds, at the epoch it was acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldPartition {
    /// The partition, `0..PARTITIONS`.
    pub partition: u16,
    /// Its epoch.
    pub epoch: i64,
}

/// A live replica as the database knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// Its id.
    pub id: String,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// Its last heartbeat (database clock).
    pub last_seen: OffsetDateTime,
    /// The partitions it holds under an unexpired lease, ascending.
    pub partitions: Vec<u16>,
    /// The singletons it holds under an unexpired lease, by name.
    pub singletons: Vec<String>,
}

/// The lease operations of a shared database.
#[async_trait]
pub(crate) trait Leases: Send + Sync + 'static {
    /// Records a heartbeat of `replica` and returns how many replicas are
    /// alive (a heartbeat within `lease`), this one included.
    async fn heartbeat(
        &self,
        replica: &str,
        started_at: OffsetDateTime,
        lease: Duration,
    ) -> Result<usize>;

    /// In one transaction: renews every partition `replica` still owns,
    /// gives up those beyond `fair_share` (highest first), and acquires
    /// free or expired ones up to `fair_share`, skipping rows another
    /// replica is working on, each acquisition raising the epoch. Returns
    /// what it holds now.
    async fn balance_partitions(
        &self,
        replica: &str,
        lease: Duration,
        fair_share: usize,
    ) -> Result<Vec<HeldPartition>>;

    /// Takes or renews the singleton `name` for `replica` unless another
    /// replica holds it under an unexpired lease. Returns its epoch when
    /// `replica` holds it.
    async fn hold_singleton(
        &self,
        name: &str,
        replica: &str,
        lease: Duration,
    ) -> Result<Option<i64>>;

    /// Gives up every lease of `replica` and forgets it (a clean shutdown),
    /// so the others take over without waiting for expiry.
    async fn release(&self, replica: &str) -> Result<()>;

    /// Sends `payload` on the notification channel `channel` to every
    /// replica listening (delivered when this call's transaction commits).
    async fn notify(&self, channel: &str, payload: &str) -> Result<()>;

    /// The replicas alive (a heartbeat within `lease`), by id.
    async fn replicas(&self, lease: Duration) -> Result<Vec<ReplicaRecord>>;
}
