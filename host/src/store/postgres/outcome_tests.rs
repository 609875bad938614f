//! Attempts and events without a foreign key to their notification
//! (migrations V13, V14): every way a notification goes — pruning it as
//! delivered, pruning its receipt, deleting its instance while its outcomes
//! are being written on another pool — takes its attempts and events with
//! it.

use std::time::Duration;

use super::super::conformance::fresh_database;
use super::super::test_support::{new_instance, receipt_notifying};
use super::super::{AttemptNext, AttemptRecord, DueNotification, Store};
use super::tests::{open, rows_in};

const LEASE: Duration = Duration::from_secs(30);

fn delivered(claimed: &[DueNotification]) -> Vec<AttemptRecord> {
    claimed
        .iter()
        .map(|n| AttemptRecord {
            notification_id: n.id.clone(),
            lease: n.lease.clone(),
            attempted_at: time::OffsetDateTime::now_utc(),
            status_code: Some(200),
            error: None,
            latency_ms: 1,
            response_body: bytes::Bytes::from_static(b"ok"),
            next: AttemptNext::Delivered,
        })
        .collect()
}

/// Claims every due notification (all of `instance`).
async fn claim_all(store: &Store, instance: i64) -> Vec<DueNotification> {
    let due = store
        .claim_due(time::OffsetDateTime::now_utc(), LEASE, 1000)
        .await
        .unwrap();
    assert!(due.iter().all(|n| n.instance_id == instance));
    due
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attempts_and_events_go_with_their_notifications() {
    let url = fresh_database().await;
    let (a, b) = (open(&url).await, open(&url).await);
    let old = a.create_instance(new_instance("old")).await.unwrap().id;
    let gone = a.create_instance(new_instance("gone")).await.unwrap().id;
    // Time-ordered ids, as webhook notifications have: pruning by
    // delivery time looks only below the cutoff's.
    for _ in 0..40 {
        let id = uuid::Uuid::now_v7().to_string();
        a.record_receipt(receipt_notifying(old, &id)).await.unwrap();
    }
    // Half the old instance's delivered before the cutoff (pruned as
    // delivered), half after it (pruned with their receipts, which are
    // older than the cutoff).
    let mut of_old = claim_all(&a, old).await;
    let later = of_old.split_off(20);
    a.record_attempts(delivered(&of_old)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(5)).await;
    a.record_attempts(delivered(&later)).await.unwrap();

    // The other instance is deleted while the other pool writes its
    // outcomes, one at a time.
    for i in 0..40 {
        a.record_receipt(receipt_notifying(gone, &format!("gone-{i:02}")))
            .await
            .unwrap();
    }
    let of_gone = claim_all(&b, gone).await;
    assert_eq!(of_gone.len(), 40);
    assert_eq!(rows_in(&url, "notification_events").await, 80);
    let writer = {
        let b = b.clone();
        tokio::spawn(async move {
            for n in of_gone {
                b.record_attempts(delivered(&[n])).await.unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(a.delete_instance(gone).await.unwrap());
    writer.await.unwrap();

    let pruned = a.prune(cutoff).await.unwrap();
    assert_eq!(pruned.notifications, 20, "{pruned:?}");
    assert_eq!(pruned.receipts, 40, "{pruned:?}");
    for table in ["notifications", "notification_events", "delivery_attempts"] {
        assert_eq!(rows_in(&url, table).await, 0, "rows left in {table}");
    }
}
