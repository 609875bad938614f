//! Pruning delivered notifications reads the old end of the outbox only:
//! with statistics taken when every delivered notification was old (as
//! after an idle spell longer than the retention), and a large outbox of
//! recent ones since, a prune that finds nothing old touches a few pages
//! whichever plan PostgreSQL makes. Taken without `ORDER BY id`, the chunk
//! was planned as a sequential scan expected to meet its `LIMIT` at once,
//! and read the whole table on every prune that had nothing to delete.

use super::outbox::PRUNE_DELIVERED;
use super::tests::{buffers_touched, database_with_instance, explain_json};

/// Recent delivered notifications (kept), and pending ones.
const RECENT: i64 = 20_000;
const PENDING: i64 = 5_000;
/// Old delivered notifications (pruned).
const OLD: i64 = 200;
/// Most shared buffers a prune that finds nothing may touch.
const MOST_BUFFERS: i64 = 50;

#[tokio::test]
async fn a_prune_with_nothing_old_reads_only_the_old_end() {
    let (client, instance) = database_with_instance("prune").await;
    // Ids start with `prefix`: "0…" sort below the prune's id floor "1",
    // "5…" and "6…" above it.
    let insert = |prefix: &'static str, count: i64, status: &'static str, delivered_at: i64| {
        let client = &client;
        async move {
            client
                .execute(
                    "INSERT INTO notifications (id, instance_id, source, content_type, body, \
                     event_count, status, created_at, delivered_at) \
                     SELECT $5 || lpad(g::text, 12, '0'), $1, 'webhook', 'application/json', \
                            convert_to(repeat('x', 1200), 'UTF8'), 1, $3, g, $4 \
                     FROM generate_series(1, $2::int8) AS g",
                    &[&instance, &count, &status, &delivered_at, &prefix],
                )
                .await
                .unwrap();
        }
    };
    // Statistics while every delivered notification is old, then the
    // traffic since.
    insert("0", OLD, "delivered", 1).await;
    client.batch_execute("ANALYZE").await.unwrap();
    insert("5", RECENT, "delivered", 5_000).await;
    insert("6", PENDING, "pending", 0).await;
    client
        .batch_execute(
            "INSERT INTO notification_events (notification_id, object_type, object_id, event_type) \
             SELECT id, 'ticket', id, 'updated' FROM notifications; \
             INSERT INTO delivery_attempts (notification_id, attempted_at, status_code, latency_ms) \
             SELECT id, 1, 200, 1 FROM notifications",
        )
        .await
        .unwrap();

    let count = |sql: &'static str| {
        let client = &client;
        async move {
            let n: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
            n
        }
    };
    for mode in ["force_custom_plan", "force_generic_plan"] {
        client
            .batch_execute(&format!(
                "DEALLOCATE ALL; SET plan_cache_mode = {mode}; \
                 PREPARE prune(int8, int8, text) AS {PRUNE_DELIVERED}"
            ))
            .await
            .unwrap();
        // Delivered before 1,000 ms, ids below "1", chunks of 500: the
        // first prune (custom plans) takes the old ones, later ones find
        // nothing.
        for round in 0..2 {
            let explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE prune(1000, 500, '1')";
            let plan = explain_json(&client, explain).await;
            if mode == "force_custom_plan" && round == 0 {
                continue;
            }
            let buffers = buffers_touched(&plan);
            assert!(
                buffers <= MOST_BUFFERS,
                "a prune with nothing old ({mode}, {RECENT} recent delivered, {PENDING} \
                 pending) touched {buffers} buffers (at most {MOST_BUFFERS} expected): {plan}"
            );
        }
    }
    // The old ones went with their events and attempts; nothing else did.
    let kept = RECENT + PENDING;
    assert_eq!(count("SELECT count(*) FROM notifications").await, kept);
    assert_eq!(
        count("SELECT count(*) FROM notifications WHERE id < '1'").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM notification_events").await,
        kept
    );
    assert_eq!(count("SELECT count(*) FROM delivery_attempts").await, kept);
}
