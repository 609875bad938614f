//! The delivery queue holds a row for each pending notification and for
//! nothing else: a retention prune that meets a redelivery keeps the
//! redelivered notification with its queue row, and a queue row left
//! without its notification is dropped by the next claim instead of
//! failing every claim.

use std::time::Duration;

use time::OffsetDateTime;

use super::super::conformance::fresh_database;
use super::super::test_support::{new_instance, receipt_notifying};
use super::super::Store;
use super::outbox::PRUNE_DELIVERED;
use super::tests::{connect, open};

/// A fresh database with one instance (`name`): its URL, the store on it
/// and the instance.
async fn store_with_instance(name: &str) -> (String, Store, i64) {
    let url = fresh_database().await;
    let store = open(&url).await;
    let instance = store.create_instance(new_instance(name)).await.unwrap().id;
    (url, store, instance)
}

/// A prune of delivered notifications that waits for the row lock of one
/// being redelivered finds it pending once the redelivery commits, and
/// leaves it: deleting it would leave its new queue row behind.
#[tokio::test]
async fn a_prune_keeps_what_a_redelivery_queued_while_it_waited() {
    let (url, store, instance) = store_with_instance("race").await;
    let (redeliverer, pruner, watcher) = (
        connect(&url).await,
        connect(&url).await,
        connect(&url).await,
    );
    // Delivered long ago: old enough to prune.
    redeliverer
        .execute(
            "INSERT INTO notifications (id, instance_id, source, content_type, body, \
             event_count, status, created_at, delivered_at) \
             VALUES ('0-old', $1, 'webhook', 'application/json', '\\x7b7d', 1, 'delivered', 1, 1)",
            &[&instance],
        )
        .await
        .unwrap();
    // A redelivery, as `outbox::redeliver` writes it, not yet committed.
    redeliverer
        .batch_execute(&format!(
            "BEGIN; \
             UPDATE notifications SET status = 'pending', attempts = 0, delivered_at = NULL \
             WHERE id = '0-old'; \
             INSERT INTO delivery_queue (notification_id, instance_id, next_attempt_at) \
             VALUES ('0-old', {instance}, 5)"
        ))
        .await
        .unwrap();
    // Delivered before 1,000 ms, ids below "1".
    let prune = tokio::spawn(async move {
        let gone: i64 = pruner
            .query_one(PRUNE_DELIVERED, &[&1000_i64, &500_i64, &"1"])
            .await
            .unwrap()
            .get(0);
        gone
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the prune never waited for the redelivery's row lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redeliverer.batch_execute("COMMIT").await.unwrap();

    assert_eq!(
        prune.await.unwrap(),
        0,
        "the redelivered notification was pruned"
    );
    let kept = store.get_notification("0-old").await.unwrap();
    assert!(kept.is_some(), "the redelivered notification is kept");
    let claimed = store
        .claim_due(OffsetDateTime::now_utc(), Duration::from_secs(30), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["0-old"], "the redelivered notification is sent");
}

/// A queue row whose notification is gone (deleted by hand, say) is
/// dropped by the claim that takes it; the claim succeeds with the rest.
#[tokio::test]
async fn a_claim_drops_a_queue_row_without_its_notification() {
    let (url, store, instance) = store_with_instance("orphan").await;
    for id in ["gone", "kept"] {
        store
            .record_receipt(receipt_notifying(instance, id))
            .await
            .unwrap();
    }
    let db = connect(&url).await;
    db.execute("DELETE FROM notifications WHERE id = 'gone'", &[])
        .await
        .unwrap();

    let claimed = store
        .claim_due(OffsetDateTime::now_utc(), Duration::from_secs(30), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["kept"]);
    let queued: i64 = db
        .query_one(
            "SELECT count(*) FROM delivery_queue WHERE notification_id = 'gone'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 0, "the orphaned queue row was dropped");
}
