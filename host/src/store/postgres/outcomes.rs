//! SQL for writing delivery attempts' outcomes.
//!
//! An outcome is written only where the notification's queue row still
//! carries the attempt's lease token (the row then goes, or loses the
//! lease, so it applies once); the others affect no row and are returned
//! as stale. One statement ([`WRITE`])
//! writes a whole batch's outcomes and logs the attempts of those applied.
//!
//! Outcomes of unordered notifications need nothing else, so that
//! statement runs first in a transaction of its own, taking only them: one
//! round trip for the batch. An ordered notification that settles may let
//! the next of its key go, which must happen in the same transaction under
//! the key's advisory lock ([`super::ordering::release`]); the outcomes the
//! first statement left (ordered ones, and stale ones, found stale again)
//! are written by the same statement in such a transaction.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;

use super::super::error::Result;
use super::super::outbox::{AttemptRecord, RecordedAttempts};
use super::super::timestamp::to_millis;
use super::error::{get as col, is_transient};
use super::TRIES;

/// Writes outcomes and logs the attempts of those applied, in one
/// statement.
///
/// Parameters: `$1`–`$10` the attempts (notification, lease, status code,
/// error, new state, next attempt time, delivery time, start, latency,
/// answer), `$11` whether to leave ordered notifications alone.
///
/// An outcome applies where the notification's queue row still carries
/// its lease: a settled one's row goes, a retried one's is due again
/// without a lease. The queue rows are locked first (as claims, releases
/// and instance deletion lock them), then the notification is updated
/// once and the attempt logged.
///
/// Returns, per outcome applied, the notification, the lease, whether it
/// settled, and its instance and ordering key.
const WRITE: &str = "\
WITH u AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[],
                         $7::int8[], $8::int8[], $9::int8[], $10::bytea[])
         AS u(id, lease, status, error, state, next, delivered, attempted_at, latency, answer)
), settled AS (
    DELETE FROM delivery_queue q USING u
    WHERE q.notification_id = u.id AND q.lease_token = u.lease AND u.state <> 'pending'
      AND (q.order_key IS NULL OR NOT $11)
    RETURNING q.notification_id AS id, q.instance_id, q.order_key, u.lease, u.status, u.error,
              u.state, u.delivered, u.attempted_at, u.latency, u.answer
), retried AS (
    UPDATE delivery_queue q SET lease_token = NULL,
        next_attempt_at = COALESCE(u.next, q.next_attempt_at)
    FROM u
    WHERE q.notification_id = u.id AND q.lease_token = u.lease AND u.state = 'pending'
      AND (q.order_key IS NULL OR NOT $11)
    RETURNING q.notification_id AS id, q.instance_id, q.order_key, u.lease, u.status, u.error,
              u.state, u.delivered, u.attempted_at, u.latency, u.answer
), kept AS (
    SELECT * FROM settled UNION ALL SELECT * FROM retried
), done AS (
    UPDATE notifications n SET attempts = n.attempts + 1, last_status = k.status,
        last_error = k.error, status = k.state, delivered_at = k.delivered
    FROM kept k WHERE n.id = k.id
), logged AS (
    INSERT INTO delivery_attempts (notification_id, attempted_at, status_code, error,
                                   latency_ms, response_body)
    SELECT id, attempted_at, status, error, latency, answer FROM kept
)
SELECT id, lease, state <> 'pending', instance_id, order_key FROM kept";

/// One outcome the database applied.
struct Applied {
    id: String,
    lease: String,
    /// Delivered or dead-lettered.
    settled: bool,
    /// Its instance and ordering key, if ordered.
    key: Option<(i64, String)>,
}

/// Records attempts and their consequences (see the module's docs): the
/// unordered ones' outcomes in one statement, then, if any are left, the
/// rest in a transaction that also lets settled ordered notifications'
/// successors go. Each part is tried again on a deadlock or serialization
/// failure (it was rolled back whole).
pub(super) async fn record(
    client: &mut deadpool_postgres::Object,
    records: &[AttemptRecord],
) -> Result<RecordedAttempts> {
    let all: Vec<&AttemptRecord> = records.iter().collect();
    let first = retrying(|| write(&*client, &all, true)).await?;
    let (mut recorded, left) = sort_out(&all, first);
    if left.is_empty() {
        return Ok(recorded);
    }
    let mut tries = 0;
    let (applied, released) = loop {
        tries += 1;
        let tx = client.transaction().await?;
        match write_ordered(&tx, &left).await {
            Ok(done) => {
                tx.commit().await?;
                break done;
            }
            Err(e) if tries < TRIES && is_transient(&e) => {}
            Err(e) => return Err(e),
        }
    };
    let (second, stale) = sort_out(&left, applied);
    recorded.applied += second.applied;
    recorded.released = released;
    recorded.stale = stale.iter().map(|r| r.notification_id.clone()).collect();
    Ok(recorded)
}

/// Runs `write` until it succeeds, fails for good, or [`TRIES`] are used.
async fn retrying<F, Fut>(mut write: F) -> Result<Vec<Applied>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Applied>>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match write().await {
            Err(e) if tries < TRIES && is_transient(&e) => {}
            done => return done,
        }
    }
}

/// Writes the outcomes `records` (ordered ones included) in the
/// transaction `tx` and lets the successors of the settled ordered ones
/// go; returns what was applied and how many were released.
async fn write_ordered(
    tx: &deadpool_postgres::Transaction<'_>,
    records: &[&AttemptRecord],
) -> Result<(Vec<Applied>, u64)> {
    let applied = write(tx, records, false).await?;
    let settled: Vec<(i64, &str)> = applied
        .iter()
        .filter(|a| a.settled)
        .filter_map(|a| a.key.as_ref())
        .map(|(instance, key)| (*instance, key.as_str()))
        .collect();
    let now = to_millis(time::OffsetDateTime::now_utc());
    let released = super::ordering::release(tx, &settled, now).await?;
    Ok((applied, released))
}

/// Runs [`WRITE`] for `records`, leaving ordered notifications alone if
/// `unordered_only`.
async fn write(
    client: &impl GenericClient,
    records: &[&AttemptRecord],
    unordered_only: bool,
) -> Result<Vec<Applied>> {
    let mut ids = Vec::with_capacity(records.len());
    let mut leases = Vec::with_capacity(records.len());
    let mut statuses = Vec::with_capacity(records.len());
    let mut errors = Vec::with_capacity(records.len());
    let mut states = Vec::with_capacity(records.len());
    let mut nexts = Vec::with_capacity(records.len());
    let mut delivereds = Vec::with_capacity(records.len());
    let mut started = Vec::with_capacity(records.len());
    let mut latencies = Vec::with_capacity(records.len());
    let mut answers = Vec::with_capacity(records.len());
    for r in records {
        let (state, next, delivered) = r.outcome_columns();
        ids.push(r.notification_id.as_str());
        leases.push(r.lease.as_str());
        statuses.push(r.status_code.map(i64::from));
        errors.push(r.error.as_deref());
        states.push(state.as_str());
        nexts.push(next);
        delivereds.push(delivered);
        started.push(to_millis(r.attempted_at));
        latencies.push(i64::from(r.latency_ms));
        answers.push(&r.response_body[..]);
    }
    let stmt = client.prepare_cached(WRITE).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &ids,
                &leases,
                &statuses,
                &errors,
                &states,
                &nexts,
                &delivereds,
                &started,
                &latencies,
                &answers,
                &unordered_only,
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let key = match col::<Option<String>>(row, 4)? {
                Some(key) => Some((col::<i64>(row, 3)?, key)),
                None => None,
            };
            Ok(Applied {
                id: col(row, 0)?,
                lease: col(row, 1)?,
                settled: col(row, 2)?,
                key,
            })
        })
        .collect()
}

/// Matches `records` (in order) with what was `applied`: each applied
/// outcome counts once, for the first record with its notification and
/// lease; returns the count with the records left over.
fn sort_out<'a>(
    records: &[&'a AttemptRecord],
    applied: Vec<Applied>,
) -> (RecordedAttempts, Vec<&'a AttemptRecord>) {
    let mut open: HashMap<(String, String), u32> = HashMap::with_capacity(applied.len());
    for a in applied {
        *open.entry((a.id, a.lease)).or_default() += 1;
    }
    let mut recorded = RecordedAttempts::default();
    let mut left = Vec::new();
    for r in records {
        let key = (r.notification_id.clone(), r.lease.clone());
        match open.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                recorded.applied += 1;
            }
            _ => left.push(*r),
        }
    }
    (recorded, left)
}
