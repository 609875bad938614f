//! The outbox: claims under a lease token, outcomes written only by the
//! lease's holder, redelivery, and the event log read from it.

use std::time::Duration;

use time::OffsetDateTime;

use super::super::test_support::{new_instance, receipt_notifying};
use super::super::{
    AttemptNext, AttemptRecord, DeliveryState, DueNotification, NotificationQuery, Redeliver,
};
use super::TestStore;

const LEASE: Duration = Duration::from_secs(30);

/// The record of an attempt on `n` (200 if delivered, else 500).
pub(super) fn outcome(n: &DueNotification, next: AttemptNext) -> AttemptRecord {
    AttemptRecord {
        notification_id: n.id.clone(),
        lease: n.lease.clone(),
        attempted_at: OffsetDateTime::now_utc(),
        status_code: Some(if next == AttemptNext::Delivered {
            200
        } else {
            500
        }),
        error: None,
        latency_ms: 3,
        response_body: bytes::Bytes::from_static(b"{\"ok\":false}\xff"),
        next,
    }
}

/// An instance with notifications `ids`, each from its own receipt.
async fn with_notifications(store: &TestStore, ids: &[&str]) -> i64 {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    for n in ids {
        store
            .record_receipt(receipt_notifying(id, n))
            .await
            .unwrap();
    }
    id
}

pub(super) async fn a_due_notification_is_claimed_once(store: TestStore) {
    let names: Vec<String> = (0..50).map(|i| format!("n-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    with_notifications(&store, &refs).await;
    let now = OffsetDateTime::now_utc();
    // Several claimants at once: every notification goes to exactly one.
    let claimants: Vec<_> = (0..5)
        .map(|_| {
            let store = (*store).clone();
            tokio::spawn(async move { store.claim_due(now, LEASE, 20).await.unwrap() })
        })
        .collect();
    let mut claimed = Vec::new();
    let mut leases = std::collections::HashSet::new();
    for c in claimants {
        let batch = c.await.unwrap();
        for n in &batch {
            leases.insert(n.lease.clone());
        }
        claimed.extend(batch.into_iter().map(|n| n.id));
    }
    claimed.sort();
    assert_eq!(claimed, names, "each claimed once");
    assert!(leases.len() > 1, "every claim has its own lease token");
    assert!(store.claim_due(now, LEASE, 20).await.unwrap().is_empty());
}

pub(super) async fn an_expired_lease_is_reclaimed_and_the_stale_outcome_rejected(store: TestStore) {
    with_notifications(&store, &["n-1"]).await;
    let now = OffsetDateTime::now_utc();
    let first = store.claim_due(now, LEASE, 10).await.unwrap().remove(0);
    let during = now + Duration::from_secs(10);
    assert!(store.claim_due(during, LEASE, 10).await.unwrap().is_empty());
    let after = now + LEASE + Duration::from_secs(1);
    let second = store.claim_due(after, LEASE, 10).await.unwrap().remove(0);
    assert_eq!(second.id, "n-1");
    assert_ne!(second.lease, first.lease);

    // The first claimant comes back late: its outcome changes nothing.
    let late = store
        .record_attempts(vec![outcome(&first, AttemptNext::Dead)])
        .await
        .unwrap();
    assert_eq!(
        (late.applied, late.stale.clone()),
        (0, vec!["n-1".to_string()])
    );
    let kept = store.get_notification("n-1").await.unwrap().unwrap();
    assert_eq!(kept.state, DeliveryState::Pending);
    assert!(kept.attempt_log.is_empty() && kept.attempts == 0);

    let current = store
        .record_attempts(vec![outcome(&second, AttemptNext::Delivered)])
        .await
        .unwrap();
    assert_eq!((current.applied, current.stale.len()), (1, 0));
    let kept = store.get_notification("n-1").await.unwrap().unwrap();
    assert_eq!(kept.state, DeliveryState::Delivered);
    assert_eq!(kept.attempt_log.len(), 1);
}

pub(super) async fn an_outcome_applies_once(store: TestStore) {
    with_notifications(&store, &["n-1", "n-2"]).await;
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_due(now, LEASE, 10).await.unwrap();
    let records: Vec<_> = claimed
        .iter()
        .map(|n| outcome(n, AttemptNext::RetryAt(now)))
        .collect();
    let first = store.record_attempts(records.clone()).await.unwrap();
    assert_eq!((first.applied, first.stale.len()), (2, 0));
    let replay = store.record_attempts(records).await.unwrap();
    assert_eq!((replay.applied, replay.stale.len()), (0, 2));
    for id in ["n-1", "n-2"] {
        let n = store.get_notification(id).await.unwrap().unwrap();
        assert_eq!((n.attempts, n.attempt_log.len()), (1, 1));
    }
}

pub(super) async fn a_redelivery_takes_over_from_the_claimant(store: TestStore) {
    with_notifications(&store, &["n-1"]).await;
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_due(now, LEASE, 10).await.unwrap().remove(0);
    assert_eq!(
        store.redeliver(Redeliver::One("n-1".into())).await.unwrap(),
        1
    );
    let stale = store
        .record_attempts(vec![outcome(&claimed, AttemptNext::Dead)])
        .await
        .unwrap();
    assert_eq!(stale.applied, 0);
    let again = store
        .claim_due(OffsetDateTime::now_utc(), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the redelivery stands");
}

pub(super) async fn outcomes_move_notifications_through_their_states(store: TestStore) {
    let id = with_notifications(&store, &["n-ok", "n-retry", "n-dead"]).await;
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_due(now, LEASE, 10).await.unwrap();
    let retry_at = now + Duration::from_secs(60);
    let records = claimed
        .iter()
        .map(|n| {
            let next = match n.id.as_str() {
                "n-ok" => AttemptNext::Delivered,
                "n-retry" => AttemptNext::RetryAt(retry_at),
                _ => AttemptNext::Dead,
            };
            outcome(n, next)
        })
        .collect();
    store.record_attempts(records).await.unwrap();
    let depth = store.outbox_depth().await.unwrap();
    assert_eq!((depth.pending, depth.dead), (1, 1));
    let retry = store.get_notification("n-retry").await.unwrap().unwrap();
    assert_eq!(retry.attempts, 1);
    assert_eq!(retry.last_status, Some(500));
    let due_at = retry.next_attempt_at.unwrap();
    assert!((due_at - retry_at).abs() < time::Duration::milliseconds(1));
    assert!(store.claim_due(now, LEASE, 10).await.unwrap().is_empty());
    assert_eq!(
        store.claim_due(retry_at, LEASE, 10).await.unwrap()[0].id,
        "n-retry"
    );
    let ok = store.get_notification("n-ok").await.unwrap().unwrap();
    assert!(ok.delivered_at.is_some() && ok.next_attempt_at.is_none());

    assert_eq!(store.redeliver(Redeliver::DeadOf(id)).await.unwrap(), 1);
    let dead = store.get_notification("n-dead").await.unwrap().unwrap();
    assert_eq!((dead.state, dead.attempts), (DeliveryState::Pending, 0));
    assert_eq!(dead.attempt_log.len(), 1, "the log keeps earlier cycles");
}

pub(super) async fn the_event_log_filters_and_pages(store: TestStore) {
    let names: Vec<String> = (0..7).map(|i| format!("n-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let a = with_notifications(&store, &refs).await;
    let b = with_notifications(&store, &["other"]).await;
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim_due(now, LEASE, 2).await.unwrap();
    let records = claimed
        .iter()
        .map(|n| outcome(n, AttemptNext::Dead))
        .collect();
    store.record_attempts(records).await.unwrap();
    let tried = store
        .get_notification(&claimed[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tried.attempt_log[0].response_body.as_ref(),
        b"{\"ok\":false}\xff",
        "the receiver's answer reads back byte for byte"
    );

    let page = |after: Option<String>| NotificationQuery {
        instance_id: Some(a),
        after,
        limit: 3,
        ..NotificationQuery::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let got = store.list_notifications(page(after.clone())).await.unwrap();
        seen.extend(got.iter().map(|n| n.id.clone()));
        if got.len() < 3 {
            break;
        }
        after = got.last().map(|n| n.id.clone());
    }
    let mut newest_first = names.clone();
    newest_first.reverse();
    assert_eq!(
        seen, newest_first,
        "newest (highest id) first, every one once"
    );

    let dead = store
        .list_notifications(NotificationQuery {
            state: Some(DeliveryState::Dead),
            ..NotificationQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    let untried = store
        .list_notifications(NotificationQuery {
            state: Some(DeliveryState::Pending),
            attempted: Some(false),
            ..NotificationQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(untried.len(), 6, "all but the two claimed");
    let of_b = store
        .list_notifications(NotificationQuery {
            instance_id: Some(b),
            ..NotificationQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(of_b.len(), 1);
    let later = store
        .list_notifications(NotificationQuery {
            since: Some(now + Duration::from_secs(3600)),
            ..NotificationQuery::default()
        })
        .await
        .unwrap();
    assert!(later.is_empty());
    assert!(store.get_notification("missing").await.unwrap().is_none());
}
