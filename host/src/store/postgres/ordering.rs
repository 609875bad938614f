//! Ordered delivery's SQL: of the unsettled notifications of one instance
//! with the same ordering key, only one is due or in flight at a time (the
//! head); the others are stored waiting ([`WAITING`]) and go one by one, in
//! the order of their ids (the order they were accepted), as the one before
//! settles.
//!
//! Concurrent writers (other pools, other replicas) are ordered by a
//! transaction-level advisory lock per `(instance, key)`, taken by every
//! transaction just before it looks for a key's head: the ingest that
//! stores a waiting notification, the attempt that settles the head, the
//! redelivery that puts one back in line. Whichever comes second waits for
//! the first to commit and then, in a statement of its own (a fresh
//! snapshot under read committed), sees what it wrote — so a notification
//! stored while its key's head settles is never left waiting with nobody
//! to release it. Locks are taken in one sorted order, so they cannot
//! deadlock on each other.

use deadpool_postgres::GenericClient;

use super::super::error::Result;
use super::super::outbox::WAITING;
use super::error::get as col;

/// Makes the first waiting notification of each key without a head its
/// head. Parameters: `$1`/`$2` the keys (instance, key), `$3` now, `$4`
/// [`WAITING`].
///
/// A key without a head has only waiting notifications pending, so its
/// first waiting one is its first pending one. Both lookups (any head, the
/// first pending) are `ORDER BY id LIMIT 1` within the key, which the
/// ordered index (instance, key, id) answers in a step or two whatever the
/// statistics. Asked as `NOT EXISTS` and as "the first with the waiting
/// time", a generic plan from early statistics could answer them through
/// the due index, walking every pending notification of the instance for
/// each key.
pub(super) const RELEASE: &str = "\
UPDATE delivery_queue q SET next_attempt_at = $3::int8
FROM (SELECT DISTINCT instance_id, key
      FROM unnest($1::int8[], $2::text[]) AS u(instance_id, key)) AS k
LEFT JOIN LATERAL (SELECT h.notification_id FROM delivery_queue h
                   WHERE h.instance_id = k.instance_id AND h.order_key = k.key
                     AND h.next_attempt_at <> $4::int8
                   ORDER BY h.notification_id LIMIT 1) AS head ON true
WHERE head.notification_id IS NULL
  AND q.notification_id = (SELECT w.notification_id FROM delivery_queue w
                           WHERE w.instance_id = k.instance_id AND w.order_key = k.key
                           ORDER BY w.notification_id LIMIT 1)";

/// Takes the advisory locks of `keys` (`(instance, key)`, any order,
/// repeats allowed) until the transaction ends, then, for each key without
/// a head, makes its first waiting notification the head, due at `now_ms`
/// ([`RELEASE`]; claims skip it while its instance's delivery is paused).
/// Returns how many went.
pub(super) async fn release(
    client: &impl GenericClient,
    keys: &[(i64, &str)],
    now_ms: i64,
) -> Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    let instances: Vec<i64> = keys.iter().map(|(i, _)| *i).collect();
    let names: Vec<&str> = keys.iter().map(|(_, k)| *k).collect();
    let lock = client
        .prepare_cached(
            "SELECT pg_advisory_xact_lock(h) FROM \
             (SELECT DISTINCT hashtextextended(key, instance_id) AS h \
              FROM unnest($1::int8[], $2::text[]) AS u(instance_id, key) ORDER BY h) AS locks",
        )
        .await?;
    let release = client.prepare_cached(RELEASE).await?;
    // Both sent at once; the release still runs after the locks are taken,
    // in a statement (and snapshot) of its own.
    let (_, released) = futures_util::future::try_join(
        client.execute(&lock, &[&instances, &names]),
        client.execute(&release, &[&instances, &names, &now_ms, &WAITING]),
    )
    .await?;
    Ok(released)
}

/// Queues notifications just made pending again by a redelivery (`ids`):
/// due at `now_ms` and without a lease (a claim holding one of them can no
/// longer record its outcome), ordered ones back in line behind the
/// unsettled ones of their key, each key's first going if it has no head.
pub(super) async fn requeue(
    client: &impl GenericClient,
    ids: &[String],
    now_ms: i64,
) -> Result<()> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO delivery_queue (notification_id, instance_id, next_attempt_at, order_key) \
             SELECT id, instance_id, CASE WHEN order_key IS NULL THEN $2::int8 ELSE $3::int8 END, order_key \
             FROM notifications WHERE id = ANY($1) \
             ON CONFLICT (notification_id) DO UPDATE \
             SET next_attempt_at = excluded.next_attempt_at, lease_token = NULL \
             RETURNING instance_id, order_key",
        )
        .await?;
    let rows = client.query(&stmt, &[&ids, &now_ms, &WAITING]).await?;
    let keys = rows
        .iter()
        .filter_map(|row| match col::<Option<String>>(row, 1) {
            Ok(Some(key)) => Some(col::<i64>(row, 0).map(|instance| (instance, key))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>>>()?;
    let keys: Vec<(i64, &str)> = keys.iter().map(|(i, k)| (*i, k.as_str())).collect();
    release(client, &keys, now_ms).await?;
    Ok(())
}
