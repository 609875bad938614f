//! SQL for claiming due notifications under the claim rules (each
//! instance's fair share and pace, see [`super::super::pacing`]) and for
//! handing claimed ones back unattempted.
//!
//! Everything runs on the single writer connection in one transaction, so
//! the room counted, the pacing row read and the rows taken cannot
//! interleave with another claim.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};
use uuid::Uuid;

use super::super::error::Result;
use super::super::outbox::{DueNotification, WAITING};
use super::super::pacing::{self, ClaimRules, Claimed, DueInstance};

/// Takes up to `limit` due notifications, oldest due first, at most each
/// instance's share: moves their next attempt to `lease_until_ms` (so they
/// are not taken twice while in flight), stamps them with a fresh lease
/// token and moves the paced instances' pacing rows on. Waiting
/// notifications are never due, and paused instances' are not taken.
pub(super) fn claim_due(
    conn: &mut Connection,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u32,
    rules: &ClaimRules,
) -> Result<Claimed> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut claimed = Claimed::default();
    let due = due_instances(&tx, now_ms)?;
    let mut pacing = HashMap::new();
    {
        let mut read =
            tx.prepare_cached("SELECT next_send_us FROM delivery_pacing WHERE instance_id = ?1")?;
        for d in due.iter().filter(|d| rules.rates.contains_key(&d.id)) {
            if let Some(t) = read.query_row([d.id], |r| r.get(0)).optional()? {
                pacing.insert(d.id, t);
            }
        }
    }
    let now_us = now_ms.saturating_mul(1000);
    let shares = pacing::shares(rules, &due, &pacing, now_us, &mut claimed);
    // Each instance's oldest due, at most its share; then the oldest of
    // those overall, at most `limit`.
    let mut candidates: Vec<(i64, i64)> = Vec::new();
    {
        let mut oldest = tx.prepare_cached(
            "SELECT rowid, next_attempt_at FROM notifications INDEXED BY notifications_due_by_instance \
             WHERE instance_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2 \
             ORDER BY next_attempt_at LIMIT ?3",
        )?;
        for s in shares.iter().filter(|s| s.take > 0) {
            let take = s.take.min(limit);
            let rows = oldest.query_map(params![s.instance_id, now_ms, take], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(0)?))
            })?;
            for row in rows {
                candidates.push(row?);
            }
        }
    }
    candidates.sort_unstable();
    candidates.truncate(limit as usize);
    let lease = Uuid::new_v4().to_string();
    let mut taken: HashMap<i64, u32> = HashMap::new();
    {
        let mut take = tx.prepare_cached(
            "UPDATE notifications SET next_attempt_at = ?2, lease_token = ?3 WHERE rowid = ?1 \
             RETURNING id, instance_id, content_type, body, attempts",
        )?;
        for (_, rowid) in &candidates {
            let n = take.query_row(params![rowid, lease_until_ms, lease], |row| {
                Ok(DueNotification {
                    id: row.get(0)?,
                    instance_id: row.get(1)?,
                    content_type: row.get(2)?,
                    body: row.get::<_, Vec<u8>>(3)?.into(),
                    attempts: row.get(4)?,
                    lease: lease.clone(),
                })
            })?;
            *taken.entry(n.instance_id).or_default() += 1;
            claimed.due.push(n);
        }
    }
    let paced = pacing::settle(&shares, &taken, &mut claimed);
    {
        let mut write = tx.prepare_cached(
            "INSERT INTO delivery_pacing (instance_id, next_send_us) VALUES (?1, ?2) \
             ON CONFLICT (instance_id) DO UPDATE SET next_send_us = excluded.next_send_us",
        )?;
        for (instance, next) in paced {
            write.execute(params![instance, next])?;
        }
    }
    tx.commit()?;
    Ok(claimed)
}

/// The instances with notifications due at `now_ms` whose delivery is not
/// paused, each with how many of its notifications are under an unexpired
/// lease. One index probe per instance: a long backlog of one is never
/// walked to find another's (and a paused one's is not read at all).
fn due_instances(conn: &Connection, now_ms: i64) -> Result<Vec<DueInstance>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, (SELECT count(*) FROM notifications l INDEXED BY notifications_leased \
                       WHERE l.instance_id = i.id AND l.lease_token IS NOT NULL \
                         AND l.next_attempt_at > ?1 AND l.next_attempt_at < ?2) \
         FROM instances i \
         WHERE i.delivery_paused IS NULL \
           AND EXISTS (SELECT 1 FROM notifications d INDEXED BY notifications_due_by_instance \
                       WHERE d.instance_id = i.id AND d.status = 'pending' \
                         AND d.next_attempt_at <= ?1)",
    )?;
    let rows = stmt.query_map(params![now_ms, WAITING], |r| {
        Ok(DueInstance {
            id: r.get(0)?,
            leased: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Hands claimed notifications back unattempted (`(id, lease token)`):
/// where the token still holds, the lease is dropped and the notification
/// is due at `due_ms`, its attempt count unchanged. Returns how many went back.
pub(super) fn hand_back(
    conn: &mut Connection,
    claims: &[(String, String)],
    due_ms: i64,
) -> Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut n = 0;
    {
        let mut back = tx.prepare_cached(
            "UPDATE notifications SET lease_token = NULL, next_attempt_at = ?3 \
             WHERE id = ?1 AND lease_token = ?2 AND status = 'pending'",
        )?;
        for (id, lease) in claims {
            n += back.execute(params![id, lease, due_ms])? as u64;
        }
    }
    tx.commit()?;
    Ok(n)
}
