//! SQL for claiming due notifications under the claim rules (each
//! instance's fair share and pace, see [`super::super::pacing`]) and for
//! handing claimed ones back unattempted.
//!
//! The claim itself is one statement ([`TAKE`]): it finds the instances
//! with due notifications whose delivery is not paused (one index probe
//! each, so one instance's backlog is never walked to find another's: a
//! lateral `LIMIT 1`, which the planner cannot turn into a join reading
//! every due row, as it did with `EXISTS` when its statistics lagged
//! behind a fast-growing outbox; ordered by due time, so it goes through
//! the due index even when the statistics say every row is due and a scan
//! of the table from its start looks as quick, which it is not once most
//! of them are delivered; a paused instance's backlog keeps its due
//! times and is not read at all), computes each one's room — the cap
//! less what it has under an unexpired lease on any replica, counted no
//! further than the cap — takes each instance's oldest due rows up to its
//! room with `FOR UPDATE SKIP LOCKED`, the oldest of those overall up to
//! the claim's size, and stamps them with the claim's lease. All of this
//! reads and writes the narrow delivery queue (one row per pending
//! notification); the notifications are read only for what is sent.
//! Without paced instances that one statement is the whole claim, in a
//! transaction that first sets how it is planned ([`PLANNER`]: through
//! indexes, whatever the statistics say).
//!
//! Paced instances' shares also depend on their pacing rows, which must be
//! read and moved on under a row lock (so replicas claiming for the same
//! paced instance take turns, and each sees the pace the other moved on).
//! They are left out of the statement's own shares: when any of them has
//! due notifications, the claim's transaction locks their pacing rows in
//! id order, passes their shares to the same statement, and moves the
//! pacing rows on by what was taken.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::super::error::Result;
use super::super::outbox::{DueNotification, WAITING};
use super::super::pacing::{self, ClaimRules, Claimed, DueInstance, Share};
use super::error::get as col;

/// Takes due notifications and leases them, in one statement.
///
/// Parameters: `$1` now, `$2` the claim's size, `$3` the lease's end, `$4`
/// the lease token, `$5` [`WAITING`], `$6` the per-instance cap, `$7` the
/// paced instances (left out of the shares computed here), `$8`/`$9` the
/// paced instances' shares (instance, most to take).
///
/// Each row is one notification taken, oldest due first, with the number
/// of instances held back by their cap (their room used up); when none was
/// taken, a single row carries that number and nulls.
pub(super) const TAKE: &str = "\
WITH due AS MATERIALIZED (
    SELECT i.id, $6::int8 - (SELECT count(*) FROM (
               SELECT FROM delivery_queue l
               WHERE l.instance_id = i.id AND l.lease_token IS NOT NULL
                 AND l.next_attempt_at > $1 AND l.next_attempt_at < $5
               LIMIT $6) AS leased) AS room
    FROM instances i
    CROSS JOIN LATERAL (SELECT FROM delivery_queue d
                        WHERE d.instance_id = i.id AND d.next_attempt_at <= $1
                        ORDER BY d.next_attempt_at LIMIT 1) AS has_due
    WHERE i.id <> ALL($7::int8[]) AND i.delivery_paused IS NULL
), shares AS (
    SELECT id AS instance_id, LEAST(room, $2) AS take FROM due WHERE room > 0
    UNION ALL
    SELECT * FROM unnest($8::int8[], $9::int8[])
), picked AS (
    SELECT c.notification_id, c.next_attempt_at
    FROM shares s
    CROSS JOIN LATERAL (
        SELECT d.notification_id, d.next_attempt_at FROM delivery_queue d
        WHERE d.instance_id = s.instance_id AND d.next_attempt_at <= $1
        ORDER BY d.next_attempt_at LIMIT s.take
        FOR UPDATE SKIP LOCKED) AS c
    ORDER BY c.next_attempt_at LIMIT $2
), taken AS (
    UPDATE delivery_queue q SET next_attempt_at = $3, lease_token = $4
    FROM picked t WHERE q.notification_id = t.notification_id
    RETURNING q.notification_id, q.instance_id, t.next_attempt_at AS due_at
)
SELECT h.capped, t.notification_id, t.instance_id, n.content_type, n.body, n.attempts
FROM (SELECT count(*) AS capped FROM due WHERE room <= 0) AS h
LEFT JOIN taken t ON true
LEFT JOIN notifications n ON n.id = t.notification_id
ORDER BY t.due_at";

/// How a claim's statements are planned, set for the claim's transaction
/// alone: through indexes, never by a sequential or bitmap scan of the
/// delivery queue. Every part of a claim reads a few rows through an
/// index; the two scans the planner could pick instead cost with the
/// outbox's size and, worse, with how much of it was delivered since the
/// last vacuum:
/// - a sequential scan, which it picks to count the leased notifications
///   when its statistics were taken while many were leased (a claim then
///   reads the whole table);
/// - a bitmap scan, which it picked for the same count late in a drain.
///   A bitmap scan never marks an index entry dead, so every claim visits
///   the page of every notification delivered since the last vacuum: in a
///   30,000-notification drain, 6,900 pages per claim by its end, half of
///   the claim's cost (measured when leases were kept in the notifications
///   table; the queue's rows are narrower, the hazard the same). An index scan marks them at the first visit and
///   later claims skip them.
///
/// The planner steers away from a disabled scan by adding a huge cost to
/// it, which would push the statement's cost past the thresholds for
/// just-in-time compilation: compiling the claim took 470 ms, against
/// 10–20 ms for running it. So JIT is off for the claim as well.
pub(super) const PLANNER: &str =
    "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL jit = off";

/// Takes up to `limit` due notifications, oldest due first, at most each
/// instance's share: their next attempt moves to `lease_until_ms`, they
/// carry a fresh lease token, and the paced instances' pacing rows move
/// on. Without a paced instance due, this is one statement (in a
/// transaction that sets how it is planned, [`PLANNER`]).
pub(super) async fn claim_due(
    client: &mut deadpool_postgres::Object,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u32,
    rules: &ClaimRules,
) -> Result<Claimed> {
    let mut claimed = Claimed::default();
    let paced: Vec<i64> = rules.rates.keys().copied().collect();
    let take = Take {
        now_ms,
        lease_until_ms,
        limit,
        rules,
        paced: &paced,
    };
    let tx = client.transaction().await?;
    tx.batch_execute(PLANNER).await?;
    let due = if paced.is_empty() {
        Vec::new()
    } else {
        due_instances(&tx, now_ms, &paced).await?
    };
    if due.is_empty() {
        take.run(&tx, &[], &mut claimed).await?;
        tx.commit().await?;
        return Ok(claimed);
    }
    let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
    let pacing = lock_pacing(&tx, &ids).await?;
    let now_us = now_ms.saturating_mul(1000);
    let shares = pacing::shares(rules, &due, &pacing, now_us, &mut claimed);
    let taken = take.run(&tx, &shares, &mut claimed).await?;
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
    tx.commit().await?;
    Ok(claimed)
}

/// One run of [`TAKE`].
struct Take<'a> {
    now_ms: i64,
    lease_until_ms: i64,
    limit: u32,
    rules: &'a ClaimRules,
    /// Every paced instance (their shares come from `shares`).
    paced: &'a [i64],
}

impl Take<'_> {
    /// Takes the unpaced instances' shares and the paced ones' `shares`,
    /// adds what was taken and the instances held back by their cap to
    /// `claimed`, and returns how many were taken of each instance.
    async fn run(
        &self,
        client: &impl GenericClient,
        shares: &[Share],
        claimed: &mut Claimed,
    ) -> Result<HashMap<i64, u32>> {
        let (instances, takes): (Vec<i64>, Vec<i64>) = shares
            .iter()
            .filter(|s| s.take > 0)
            // Never more of one instance than the claim can take: every row
            // the lateral scan reaches stays locked (skipped by other
            // claimers) until the claim's transaction ends, taken or not.
            .map(|s| (s.instance_id, i64::from(s.take.min(self.limit))))
            .unzip();
        let lease = Uuid::new_v4().to_string();
        let stmt = client.prepare_cached(TAKE).await?;
        let rows = client
            .query(
                &stmt,
                &[
                    &self.now_ms,
                    &i64::from(self.limit),
                    &self.lease_until_ms,
                    &lease,
                    &WAITING,
                    &i64::from(self.rules.per_instance),
                    &self.paced,
                    &instances,
                    &takes,
                ],
            )
            .await?;
        let mut taken: HashMap<i64, u32> = HashMap::new();
        let mut orphans = Vec::new();
        for row in &rows {
            claimed.capped += u32::try_from(col::<i64>(row, 0)?).unwrap_or(u32::MAX);
            let Some(id) = col::<Option<String>>(row, 1)? else {
                continue;
            };
            // A queue row whose notification is gone: nothing to send.
            let Some(content_type) = col::<Option<String>>(row, 3)? else {
                orphans.push(id);
                continue;
            };
            let n = DueNotification {
                id,
                instance_id: col(row, 2)?,
                content_type,
                body: col::<Vec<u8>>(row, 4)?.into(),
                attempts: u32::try_from(col::<i64>(row, 5)?).unwrap_or(u32::MAX),
                lease: lease.clone(),
            };
            *taken.entry(n.instance_id).or_default() += 1;
            claimed.due.push(n);
        }
        if !orphans.is_empty() {
            drop_orphans(client, &orphans).await?;
        }
        Ok(taken)
    }
}

/// Deletes the queue rows `ids` whose notification is gone (in the
/// claim's transaction), so they are neither claimed again nor counted in
/// their instance's room. Every statement that deletes notifications
/// deletes or keeps their queue rows with them, so this finds something
/// only after a hand-made change to the database or a defect; it is
/// logged.
async fn drop_orphans(client: &impl GenericClient, ids: &[String]) -> Result<()> {
    let stmt = client
        .prepare_cached(
            "DELETE FROM delivery_queue q WHERE q.notification_id = ANY($1) \
             AND NOT EXISTS (SELECT FROM notifications n WHERE n.id = q.notification_id)",
        )
        .await?;
    let dropped = client.execute(&stmt, &[&ids]).await?;
    tracing::warn!(
        dropped,
        notifications = ?ids,
        "delivery queue rows without their notification dropped"
    );
    Ok(())
}

/// The paced instances among `paced` with notifications due at `now_ms`
/// whose delivery is not paused, each with how many of its notifications
/// are under an unexpired lease.
async fn due_instances(
    client: &impl GenericClient,
    now_ms: i64,
    paced: &[i64],
) -> Result<Vec<DueInstance>> {
    let stmt = client
        .prepare_cached(
            "SELECT i.id, (SELECT count(*) FROM delivery_queue l \
                           WHERE l.instance_id = i.id AND l.lease_token IS NOT NULL \
                             AND l.next_attempt_at > $1 AND l.next_attempt_at < $2) \
             FROM instances i \
             CROSS JOIN LATERAL (SELECT FROM delivery_queue d \
                           WHERE d.instance_id = i.id AND d.next_attempt_at <= $1 \
                           ORDER BY d.next_attempt_at LIMIT 1) AS has_due \
             WHERE i.id = ANY($3) AND i.delivery_paused IS NULL \
             ORDER BY i.id",
        )
        .await?;
    let rows = client.query(&stmt, &[&now_ms, &WAITING, &paced]).await?;
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
/// is due at `due_ms`, its attempt count unchanged. Returns how many went back.
pub(super) async fn hand_back(
    client: &impl GenericClient,
    claims: &[(String, String)],
    due_ms: i64,
) -> Result<u64> {
    let ids: Vec<&str> = claims.iter().map(|(id, _)| id.as_str()).collect();
    let leases: Vec<&str> = claims.iter().map(|(_, l)| l.as_str()).collect();
    let stmt = client
        .prepare_cached(
            "UPDATE delivery_queue q SET lease_token = NULL, next_attempt_at = $3 \
             FROM unnest($1::text[], $2::text[]) AS b(id, lease) \
             WHERE q.notification_id = b.id AND q.lease_token = b.lease",
        )
        .await?;
    Ok(client.execute(&stmt, &[&ids, &leases, &due_ms]).await?)
}
