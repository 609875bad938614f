//! Replica heartbeats, partition and singleton leases on PostgreSQL (the
//! `V2__cluster` tables). Expiry is always `now()` of the database.
//! Acquisitions pick rows with `FOR UPDATE SKIP LOCKED`, so replicas
//! balancing at once never wait for each other, and never take a partition
//! whose poll page is being written (that transaction holds the row
//! `FOR SHARE`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Pool};
use time::OffsetDateTime;

use super::super::error::Result;
use super::super::leases::{Fence, HeldPartition, Leases, ReplicaRecord};
use super::super::timestamp::{from_millis, to_millis};
use super::error::get as col;

/// How long a replica that stopped heartbeating is remembered.
const FORGET_AFTER: &str = "1 day";

/// The leases of one database, over the store's pool.
pub(super) struct PostgresLeases {
    pub(super) pool: Pool,
}

/// Checks, in the caller's transaction, that `fence` still holds: the
/// partition has its owner and epoch and an unexpired lease. The row stays
/// share-locked until the transaction ends, so no replica takes the
/// partition over while the page is written.
pub(super) async fn fence_holds(client: &impl GenericClient, fence: &Fence) -> Result<bool> {
    let stmt = client
        .prepare_cached(
            "SELECT 1 FROM partitions \
             WHERE partition = $1 AND owner = $2 AND epoch = $3 AND lease_until > now() \
             FOR SHARE",
        )
        .await?;
    let rows = client
        .query(
            &stmt,
            &[&i32::from(fence.partition), &fence.owner, &fence.epoch],
        )
        .await?;
    Ok(!rows.is_empty())
}

fn held(rows: &[tokio_postgres::Row]) -> Result<Vec<HeldPartition>> {
    rows.iter()
        .map(|row| {
            let partition: i32 = col(row, 0)?;
            Ok(HeldPartition {
                partition: partition as u16,
                epoch: col(row, 1)?,
            })
        })
        .collect()
}

#[async_trait]
impl Leases for PostgresLeases {
    async fn heartbeat(
        &self,
        replica: &str,
        started_at: OffsetDateTime,
        lease: Duration,
    ) -> Result<usize> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO replicas (id, started_at, last_seen) \
                 VALUES ($1, to_timestamp($2::float8 / 1000), now()) \
                 ON CONFLICT (id) DO UPDATE SET last_seen = now()",
                &[&replica, &(to_millis(started_at) as f64)],
            )
            .await?;
        client
            .execute(
                &format!(
                    "DELETE FROM replicas WHERE last_seen < now() - interval '{FORGET_AFTER}'"
                ),
                &[],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM replicas \
                 WHERE last_seen > now() - $1::float8 * interval '1 second'",
                &[&lease.as_secs_f64()],
            )
            .await?;
        let alive: i64 = col(&row, 0)?;
        Ok(alive.max(1) as usize)
    }

    async fn balance_partitions(
        &self,
        replica: &str,
        lease: Duration,
        fair_share: usize,
    ) -> Result<Vec<HeldPartition>> {
        let secs = lease.as_secs_f64();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let renewed = tx
            .query(
                "UPDATE partitions SET lease_until = now() + $2::float8 * interval '1 second' \
                 WHERE owner = $1 RETURNING partition, epoch",
                &[&replica, &secs],
            )
            .await?;
        let mut holding = held(&renewed)?;
        holding.sort_by_key(|p| p.partition);
        if holding.len() > fair_share {
            let surplus: Vec<i32> = holding
                .split_off(fair_share)
                .iter()
                .map(|p| i32::from(p.partition))
                .collect();
            tx.execute(
                "UPDATE partitions SET owner = NULL, lease_until = now() \
                 WHERE owner = $1 AND partition = ANY($2)",
                &[&replica, &surplus],
            )
            .await?;
        } else if holding.len() < fair_share {
            let wanted = (fair_share - holding.len()) as i64;
            let acquired = tx
                .query(
                    "UPDATE partitions p \
                     SET owner = $1, epoch = p.epoch + 1, \
                         lease_until = now() + $2::float8 * interval '1 second' \
                     FROM (SELECT partition FROM partitions \
                           WHERE owner IS NULL OR lease_until <= now() \
                           ORDER BY partition LIMIT $3 \
                           FOR UPDATE SKIP LOCKED) free \
                     WHERE p.partition = free.partition \
                     RETURNING p.partition, p.epoch",
                    &[&replica, &secs, &wanted],
                )
                .await?;
            holding.extend(held(&acquired)?);
            holding.sort_by_key(|p| p.partition);
        }
        tx.commit().await?;
        Ok(holding)
    }

    async fn hold_singleton(
        &self,
        name: &str,
        replica: &str,
        lease: Duration,
    ) -> Result<Option<i64>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "INSERT INTO singletons (name, owner, epoch, lease_until) \
                 VALUES ($1, $2, 1, now() + $3::float8 * interval '1 second') \
                 ON CONFLICT (name) DO UPDATE \
                 SET owner = excluded.owner, lease_until = excluded.lease_until, \
                     epoch = singletons.epoch \
                         + CASE WHEN singletons.owner = excluded.owner THEN 0 ELSE 1 END \
                 WHERE singletons.owner = excluded.owner OR singletons.lease_until <= now() \
                 RETURNING epoch",
                &[&name, &replica, &lease.as_secs_f64()],
            )
            .await?;
        row.map(|r| col(&r, 0)).transpose()
    }

    async fn release(&self, replica: &str) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE partitions SET owner = NULL, lease_until = now() WHERE owner = $1",
            &[&replica],
        )
        .await?;
        tx.execute("DELETE FROM singletons WHERE owner = $1", &[&replica])
            .await?;
        tx.execute("DELETE FROM replicas WHERE id = $1", &[&replica])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await?;
        Ok(())
    }

    async fn replicas(&self, lease: Duration) -> Result<Vec<ReplicaRecord>> {
        let client = self.pool.get().await?;
        let secs = lease.as_secs_f64();
        let alive = client
            .query(
                "SELECT id, (extract(epoch FROM started_at) * 1000)::bigint, \
                        (extract(epoch FROM last_seen) * 1000)::bigint \
                 FROM replicas WHERE last_seen > now() - $1::float8 * interval '1 second' \
                 ORDER BY id",
                &[&secs],
            )
            .await?;
        let mut records = BTreeMap::new();
        for row in &alive {
            let id: String = col(row, 0)?;
            records.insert(
                id.clone(),
                ReplicaRecord {
                    id,
                    started_at: from_millis(col(row, 1)?)?,
                    last_seen: from_millis(col(row, 2)?)?,
                    partitions: Vec::new(),
                    singletons: Vec::new(),
                },
            );
        }
        let owned = client
            .query(
                "SELECT owner, partition FROM partitions \
                 WHERE owner IS NOT NULL AND lease_until > now() ORDER BY partition",
                &[],
            )
            .await?;
        for row in &owned {
            let owner: String = col(row, 0)?;
            let partition: i32 = col(row, 1)?;
            if let Some(record) = records.get_mut(&owner) {
                record.partitions.push(partition as u16);
            }
        }
        let singletons = client
            .query(
                "SELECT owner, name FROM singletons WHERE lease_until > now() ORDER BY name",
                &[],
            )
            .await?;
        for row in &singletons {
            let owner: String = col(row, 0)?;
            if let Some(record) = records.get_mut(&owner) {
                record.singletons.push(col(row, 1)?);
            }
        }
        Ok(records.into_values().collect())
    }
}
