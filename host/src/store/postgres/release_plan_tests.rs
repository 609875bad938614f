//! Releasing an ordered key's next notification reads the key's own rows,
//! not the instance's: under a generic plan made from statistics of a
//! nearly empty outbox (as the pool's prepared statements get early on),
//! with thousands of an instance's notifications pending, one release
//! touches a few dozen pages. Checking that a key has no head with
//! `NOT EXISTS` let that plan walk every pending notification of the
//! instance (through the due index) for each key released.

use super::super::outbox::WAITING;
use super::ordering::RELEASE;
use super::tests::{buffers_touched, database_with_instance, explain_json};

/// Pending ordered notifications of the instance, one key each.
const BACKLOG: i64 = 20_000;
/// Most shared buffers one release of one key may touch.
const MOST_BUFFERS: i64 = 200;

#[tokio::test]
async fn a_release_reads_its_key_not_the_instance() {
    let (client, instance) = database_with_instance("ordered").await;
    let insert = |from: i64, to: i64, status: &'static str, next: i64| {
        let client = &client;
        async move {
            client
                .execute(
                    "WITH stored AS (INSERT INTO notifications (id, instance_id, source, \
                         content_type, body, event_count, status, created_at, order_key) \
                     SELECT lpad(g::text, 12, '0'), $1, 'webhook', 'application/json', \
                            convert_to(repeat('x', 1200), 'UTF8'), 1, $4, g, 'key-' || g \
                     FROM generate_series($2::int8, $3::int8) AS g RETURNING id, order_key) \
                     INSERT INTO delivery_queue (notification_id, instance_id, next_attempt_at, \
                         order_key) \
                     SELECT id, $1, $5, order_key FROM stored WHERE $4 = 'pending'",
                    &[&instance, &from, &to, &status, &next],
                )
                .await
                .unwrap();
        }
    };
    // Statistics from a few delivered notifications, then a backlog of
    // heads in flight (each its key's only pending one), plus one key
    // whose head has just settled and whose next one waits.
    insert(1, 200, "delivered", 1).await;
    client.batch_execute("ANALYZE").await.unwrap();
    insert(201, 200 + BACKLOG, "pending", 1).await;
    client
        .execute(
            "WITH stored AS (INSERT INTO notifications (id, instance_id, source, content_type, \
                 body, event_count, status, created_at, order_key) \
             VALUES ('zzzz', $1, 'webhook', 'application/json', '\\x00', 1, 'pending', 0, 'free')) \
             INSERT INTO delivery_queue (notification_id, instance_id, next_attempt_at, order_key) \
             VALUES ('zzzz', $1, $2, 'free')",
            &[&instance, &WAITING],
        )
        .await
        .unwrap();
    let prepare = format!(
        "SET plan_cache_mode = force_generic_plan; \
         PREPARE release(int8[], text[], int8, int8) AS {RELEASE}"
    );
    client.batch_execute(&prepare).await.unwrap();
    let explain = format!(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE release('{{{instance}}}', '{{free}}', 5, {WAITING})"
    );
    let plan = explain_json(&client, &explain).await;
    let buffers = buffers_touched(&plan);
    assert!(
        buffers <= MOST_BUFFERS,
        "releasing one key of an instance with {BACKLOG} pending touched {buffers} buffers \
         (at most {MOST_BUFFERS} expected): {plan}"
    );
    // EXPLAIN ANALYZE ran it: the waiting one went, due at 5.
    let due: i64 = client
        .query_one(
            "SELECT next_attempt_at FROM delivery_queue WHERE notification_id = 'zzzz'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(due, 5, "the key's waiting notification was released");
}
