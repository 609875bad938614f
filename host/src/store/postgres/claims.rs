//! SQL for claiming due notifications under the claim rules (each
//! instance's fair share and pace, see [`super::super::pacing`]) and for
//! handing claimed ones back unattempted.
//!
//! A claim is one transaction. It finds the instances with due
//! notifications (one index probe each, so one instance's backlog is never
//! walked to find another's) with what each has under an unexpired lease
//! on any replica; locks the pacing rows of the paced ones among them in
//! id order (so replicas claiming for the same paced instance take turns,
//! and each sees the pace the other moved on); takes each instance's
//! oldest due rows up to its share with `FOR UPDATE SKIP LOCKED`, the
//! oldest of those overall up to the claim's size; and moves the pacing
//! rows on by what was taken.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::super::error::Result;
use super::super::outbox::{DueNotification, PARKED, WAITING};
use super::super::pacing::{self, ClaimRules, Claimed, DueInstance};
use super::error::get as col;

/// Takes up to `limit` due notifications, oldest due first, at most each
/// instance's share, in the transaction `tx`: their next attempt moves to
/// `lease_until_ms`, they carry a fresh lease token, and the paced
/// instances' pacing rows move on.
pub(super) async fn claim_due(
    tx: &deadpool_postgres::Transaction<'_>,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u32,
    rules: &ClaimRules,
) -> Result<Claimed> {
    let mut claimed = Claimed::default();
    let due = due_instances(tx, now_ms).await?;
    if due.is_empty() {
        return Ok(claimed);
    }
    let paced: Vec<i64> = due
        .iter()
        .map(|d| d.id)
        .filter(|id| rules.rates.contains_key(id))
        .collect();
    let pacing = lock_pacing(tx, &paced).await?;
    let now_us = now_ms.saturating_mul(1000);
    let shares = pacing::shares(rules, &due, &pacing, now_us, &mut claimed);
    let (instances, takes): (Vec<i64>, Vec<i64>) = shares
        .iter()
        .filter(|s| s.take > 0)
        // Never more of one instance than the claim can take: every row
        // the lateral scan reaches stays locked (skipped by other
        // claimers) until this transaction ends, taken or not.
        .map(|s| (s.instance_id, i64::from(s.take.min(limit))))
        .unzip();
    let mut taken: HashMap<i64, u32> = HashMap::new();
    if !instances.is_empty() {
        let lease = Uuid::new_v4().to_string();
        let stmt = tx
            .prepare_cached(
                "UPDATE notifications n SET next_attempt_at = $3, lease_token = $4 \
                 FROM (SELECT c.id, c.next_attempt_at \
                       FROM unnest($5::int8[], $6::int8[]) AS s(instance_id, take) \
                       CROSS JOIN LATERAL \
                         (SELECT d.id, d.next_attempt_at FROM notifications d \
                          WHERE d.instance_id = s.instance_id AND d.status = 'pending' \
                            AND d.next_attempt_at <= $1 \
                          ORDER BY d.next_attempt_at LIMIT s.take \
                          FOR UPDATE SKIP LOCKED) AS c \
                       ORDER BY c.next_attempt_at LIMIT $2) AS t \
                 WHERE n.id = t.id \
                 RETURNING n.id, n.instance_id, n.content_type, n.body, n.attempts, \
                           t.next_attempt_at",
            )
            .await?;
        let rows = tx
            .query(
                &stmt,
                &[
                    &now_ms,
                    &i64::from(limit),
                    &lease_until_ms,
                    &lease,
                    &instances,
                    &takes,
                ],
            )
            .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let n = DueNotification {
                id: col(row, 0)?,
                instance_id: col(row, 1)?,
                content_type: col(row, 2)?,
                body: col::<Vec<u8>>(row, 3)?.into(),
                attempts: u32::try_from(col::<i64>(row, 4)?).unwrap_or(u32::MAX),
                lease: lease.clone(),
            };
            *taken.entry(n.instance_id).or_default() += 1;
            due.push((col::<i64>(row, 5)?, n));
        }
        due.sort_by_key(|(at, _)| *at);
        claimed.due = due.into_iter().map(|(_, n)| n).collect();
    }
    let moved = pacing::settle(&shares, &taken, &mut claimed);
    if !moved.is_empty() {
        let (ids, next): (Vec<i64>, Vec<i64>) = moved.into_iter().unzip();
        let stmt = tx
            .prepare_cached(
                "UPDATE delivery_pacing p SET next_send_us = u.next \
                 FROM unnest($1::int8[], $2::int8[]) AS u(instance_id, next) \
                 WHERE p.instance_id = u.instance_id",
            )
            .await?;
        tx.execute(&stmt, &[&ids, &next]).await?;
    }
    Ok(claimed)
}

/// The instances with notifications due at `now_ms`, each with how many of
/// its notifications are under an unexpired lease.
async fn due_instances(client: &impl GenericClient, now_ms: i64) -> Result<Vec<DueInstance>> {
    let stmt = client
        .prepare_cached(
            "SELECT i.id, (SELECT count(*) FROM notifications l \
                           WHERE l.instance_id = i.id AND l.lease_token IS NOT NULL \
                             AND l.next_attempt_at > $1 AND l.next_attempt_at < $2) \
             FROM instances i \
             WHERE EXISTS (SELECT 1 FROM notifications d \
                           WHERE d.instance_id = i.id AND d.status = 'pending' \
                             AND d.next_attempt_at <= $1)",
        )
        .await?;
    let rows = client.query(&stmt, &[&now_ms, &WAITING]).await?;
    rows.iter()
        .map(|row| {
            Ok(DueInstance {
                id: col(row, 0)?,
                leased: u32::try_from(col::<i64>(row, 1)?).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// Makes sure the paced instances `ids` have pacing rows, locks them until
/// the transaction ends (in id order, so claimers cannot deadlock on
/// them) and returns their next theoretical send times.
async fn lock_pacing(
    tx: &deadpool_postgres::Transaction<'_>,
    ids: &[i64],
) -> Result<HashMap<i64, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let create = tx
        .prepare_cached(
            "INSERT INTO delivery_pacing (instance_id, next_send_us) \
             SELECT id, 0 FROM instances WHERE id = ANY($1) \
             ON CONFLICT (instance_id) DO NOTHING",
        )
        .await?;
    tx.execute(&create, &[&ids]).await?;
    let lock = tx
        .prepare_cached(
            "SELECT instance_id, next_send_us FROM delivery_pacing \
             WHERE instance_id = ANY($1) ORDER BY instance_id FOR UPDATE",
        )
        .await?;
    tx.query(&lock, &[&ids])
        .await?
        .iter()
        .map(|row| Ok((col(row, 0)?, col(row, 1)?)))
        .collect()
}

/// Hands claimed notifications back unattempted (`(id, lease token)`):
/// where the token still holds, the lease is dropped and the notification
/// is due at `due_ms` (parked if its instance's delivery is paused), its
/// attempt count unchanged. Returns how many went back.
pub(super) async fn hand_back(
    client: &impl GenericClient,
    claims: &[(String, String)],
    due_ms: i64,
) -> Result<u64> {
    let ids: Vec<&str> = claims.iter().map(|(id, _)| id.as_str()).collect();
    let leases: Vec<&str> = claims.iter().map(|(_, l)| l.as_str()).collect();
    let stmt = client
        .prepare_cached(
            "UPDATE notifications n SET lease_token = NULL, next_attempt_at = CASE \
               WHEN (SELECT delivery_paused FROM instances WHERE id = n.instance_id) IS NULL \
               THEN $3::int8 ELSE $4::int8 END \
             FROM unnest($1::text[], $2::text[]) AS b(id, lease) \
             WHERE n.id = b.id AND n.lease_token = b.lease AND n.status = 'pending'",
        )
        .await?;
    Ok(client
        .execute(&stmt, &[&ids, &leases, &due_ms, &PARKED])
        .await?)
}
