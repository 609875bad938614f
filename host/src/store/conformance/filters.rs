//! Notifications left out by an instance's event filter: stored settled,
//! never claimed, listed and searched as filtered, pruned like delivered
//! ones, and sent after a redelivery.

use std::time::Duration;

use time::OffsetDateTime;

use super::super::test_support::{new_instance, notification, receipt};
use super::super::{
    AttemptNext, AttemptRecord, DeliveryState, DueNotification, NotificationQuery, ReceiptStatus,
    Redeliver,
};
use super::{notifications_of, TestStore};

/// Everything due now, leased for 30 s.
async fn claim(store: &TestStore) -> Vec<DueNotification> {
    store
        .claim_due(OffsetDateTime::now_utc(), Duration::from_secs(30), 10)
        .await
        .unwrap()
}

pub(super) async fn a_filtered_notification_is_settled_until_redelivered(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let kept = uuid::Uuid::now_v7().to_string();
    let left_out = uuid::Uuid::now_v7().to_string();
    let mut filtered = notification(&left_out);
    filtered.filtered = true;
    let mut r = receipt(id);
    r.outcome = ReceiptStatus::Accepted {
        notifications: vec![notification(&kept), filtered],
    };
    store.record_receipt(r).await.unwrap();

    // Only the kept one is ever claimed.
    let claimed = claim(&store).await;
    assert_eq!(
        claimed.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        [kept.as_str()]
    );
    let due = claimed.into_iter().next().unwrap();
    store
        .record_attempts(vec![AttemptRecord {
            notification_id: due.id,
            lease: due.lease,
            attempted_at: OffsetDateTime::now_utc(),
            status_code: Some(200),
            error: None,
            latency_ms: 1,
            response_body: bytes::Bytes::new(),
            next: AttemptNext::Delivered,
        }])
        .await
        .unwrap();

    // Listed as filtered, and the status filter tells it from the delivered one.
    let stored = store.get_notification(&left_out).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Filtered);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.delivered_at, None, "filtered is not delivered");
    assert_eq!(stored.next_attempt_at, None);
    let by_state = |state| {
        let store = (*store).clone();
        async move {
            store
                .list_notifications(NotificationQuery {
                    instance_id: Some(id),
                    state: Some(state),
                    ..NotificationQuery::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|n| n.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by_state(DeliveryState::Filtered).await,
        vec![left_out.clone()]
    );
    assert_eq!(by_state(DeliveryState::Delivered).await, vec![kept.clone()]);
    assert!(by_state(DeliveryState::Pending).await.is_empty());
    let depth = store.outbox_depth().await.unwrap();
    assert_eq!((depth.pending, depth.dead), (0, 0), "nothing left to send");

    // A redelivery clears the flag: it is claimed and can be delivered.
    assert_eq!(
        store
            .redeliver(Redeliver::One(left_out.clone()))
            .await
            .unwrap(),
        1
    );
    let stored = store.get_notification(&left_out).await.unwrap().unwrap();
    assert_eq!(stored.state, DeliveryState::Pending);
    let claimed = claim(&store).await;
    assert_eq!(
        claimed.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        [left_out.as_str()]
    );
    assert!(by_state(DeliveryState::Filtered).await.is_empty());
}

pub(super) async fn filtered_notifications_are_pruned_like_delivered_ones(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let mut filtered = notification(&uuid::Uuid::now_v7().to_string());
    filtered.filtered = true;
    let mut r = receipt(id);
    r.outcome = ReceiptStatus::Accepted {
        notifications: vec![filtered],
    };
    store.record_receipt(r).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = OffsetDateTime::now_utc();

    let pruned = store.prune(cutoff).await.unwrap();

    assert_eq!(
        (pruned.notifications, pruned.receipts),
        (1, 1),
        "{pruned:?}"
    );
    assert!(notifications_of(&store, id).await.is_empty());
}
