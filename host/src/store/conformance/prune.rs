//! Retention: only what is old and settled goes, in bounded chunks.

use std::time::Duration;

use time::OffsetDateTime;

use super::super::test_support::{bare_receipt, failed_receipt, new_instance, receipt_notifying};
use super::super::{AttemptNext, AttemptRecord, Pruned, PRUNE_CHUNK};
use super::{notifications_of, TestStore};

pub(super) async fn pruning_deletes_only_what_is_old_and_settled(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    for n in ["n-delivered", "n-pending", "n-dead"] {
        store
            .record_receipt(receipt_notifying(id, n))
            .await
            .unwrap();
    }
    store.record_receipt(failed_receipt(id)).await.unwrap();
    // More old, settled receipts than one chunk holds, so pruning takes
    // several writes.
    let bulk = PRUNE_CHUNK + 10;
    for _ in 0..bulk {
        store.record_receipt(bare_receipt(id)).await.unwrap();
    }
    let settle = |claimed: Vec<super::super::DueNotification>| -> Vec<AttemptRecord> {
        claimed
            .into_iter()
            .filter(|n| n.id != "n-pending")
            .map(|n| AttemptRecord {
                next: if n.id == "n-dead" {
                    AttemptNext::Dead
                } else {
                    AttemptNext::Delivered
                },
                notification_id: n.id,
                lease: n.lease,
                attempted_at: OffsetDateTime::now_utc(),
                status_code: Some(200),
                error: None,
                latency_ms: 1,
                response_body: bytes::Bytes::new(),
            })
            .collect()
    };
    let lease = Duration::from_secs(30);
    let claimed = store
        .claim_due(OffsetDateTime::now_utc(), lease, 10)
        .await
        .unwrap();
    store.record_attempts(settle(claimed)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .record_receipt(receipt_notifying(id, "n-recent"))
        .await
        .unwrap();
    let claimed = store
        .claim_due(OffsetDateTime::now_utc(), lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "n-pending stays leased");
    store.record_attempts(settle(claimed)).await.unwrap();

    let pruned = store.prune(cutoff).await.unwrap();

    // The old delivered notification and its receipt, and the bulk.
    assert_eq!(pruned.receipts, 1 + bulk as u64, "{pruned:?}");
    let exists = |n: &'static str| {
        let store = (*store).clone();
        async move { store.get_notification(n).await.unwrap().is_some() }
    };
    assert!(!exists("n-delivered").await, "old and delivered: gone");
    assert!(exists("n-pending").await, "still to deliver: kept");
    assert!(
        exists("n-dead").await,
        "dead-lettered, may be redelivered: kept"
    );
    assert!(exists("n-recent").await, "newer than the cutoff: kept");
    assert_eq!(notifications_of(&store, id).await.len(), 3);
    assert_eq!(store.prune(cutoff).await.unwrap(), Pruned::default());
    // The failed receipt is kept: pruning everything settled up to now
    // deletes the recent receipt (delivered) but never the failed one.
    let later = OffsetDateTime::now_utc() + Duration::from_secs(1);
    let rest = store.prune(later).await.unwrap();
    assert_eq!(rest.receipts, 1, "only n-recent's receipt; failed stays");
}
