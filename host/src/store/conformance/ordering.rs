//! Ordered delivery: of the unsettled notifications of one instance with
//! the same ordering key, one is due or in flight at a time; the next goes
//! when it is delivered or dead-lettered, in the order they were stored.
//! Other keys flow meanwhile; a pause keeps the line; a redelivery puts a
//! notification back at the end of its key's line; one batch of outcomes
//! may settle ordered and unordered notifications at once.

use std::time::Duration;

use time::OffsetDateTime;

use super::super::test_support::{new_instance, notification, receipt};
use super::super::{
    AttemptNext, DeliveryState, DueNotification, Held, InstancePatch, NewNotification,
    ReceiptStatus, Redeliver, StoredNotification,
};
use super::outbox::outcome;
use super::TestStore;

/// A notification about `key`'s object, in line with the others of it.
fn ordered(key: &str) -> NewNotification {
    NewNotification {
        order_key: Some(key.into()),
        ..notification(&uuid::Uuid::now_v7().to_string())
    }
}

/// Stores one receipt carrying `notifications`; returns their ids.
async fn store_all(
    store: &TestStore,
    instance: i64,
    notifications: Vec<NewNotification>,
) -> Vec<String> {
    let ids = notifications.iter().map(|n| n.id.clone()).collect();
    let mut r = receipt(instance);
    r.outcome = ReceiptStatus::Accepted { notifications };
    store.record_receipt(r).await.unwrap();
    ids
}

/// Everything due now, leased for 30 s.
async fn claim(store: &TestStore) -> Vec<DueNotification> {
    let mut due = store
        .claim_due(OffsetDateTime::now_utc(), Duration::from_secs(30), 100)
        .await
        .unwrap();
    due.sort_by(|a, b| a.id.cmp(&b.id));
    due
}

fn ids(due: &[DueNotification]) -> Vec<&str> {
    due.iter().map(|n| n.id.as_str()).collect()
}

/// Records the attempt on `due` with what happens next.
async fn settle(store: &TestStore, due: &DueNotification, next: AttemptNext) {
    let recorded = store
        .record_attempts(vec![outcome(due, next)])
        .await
        .unwrap();
    assert_eq!(recorded.applied, 1);
}

pub(super) async fn one_notification_per_object_at_a_time_in_order(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let first = store_all(&store, id, vec![ordered("a"), ordered("b"), ordered("a")]).await;
    let later = store_all(&store, id, vec![ordered("a")]).await;
    let (a1, b1, a2, a3) = (&first[0], &first[1], &first[2], &later[0]);

    // Only the first of each object is due; the others wait, shown pending
    // with no next attempt.
    let due = claim(&store).await;
    assert_eq!(ids(&due), [a1.as_str(), b1.as_str()]);
    let waiting = store.get_notification(a2).await.unwrap().unwrap();
    assert_eq!(waiting.next_attempt_at, None);
    assert_eq!(waiting.held, Some(Held::Waiting));
    let head = store.get_notification(a1).await.unwrap().unwrap();
    assert_eq!(head.held, None);

    // A retry holds its object's line; the other object goes on.
    let now = OffsetDateTime::now_utc();
    settle(&store, &due[0], AttemptNext::RetryAt(now)).await;
    settle(&store, &due[1], AttemptNext::Delivered).await;
    let due = claim(&store).await;
    assert_eq!(
        ids(&due),
        [a1.as_str()],
        "a failing one holds back its object only"
    );

    // Delivered: the next of the object goes, one at a time.
    settle(&store, &due[0], AttemptNext::Delivered).await;
    let due = claim(&store).await;
    assert_eq!(ids(&due), [a2.as_str()]);
    assert!(claim(&store).await.is_empty(), "one in flight per object");

    // Dead-lettered: it stops holding the line.
    settle(&store, &due[0], AttemptNext::Dead).await;
    let due = claim(&store).await;
    assert_eq!(ids(&due), [a3.as_str()]);
    settle(&store, &due[0], AttemptNext::Delivered).await;
    assert_eq!(store.outbox_depth().await.unwrap().pending, 0);
}

pub(super) async fn a_redelivery_goes_to_the_end_of_its_objects_line(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let line = store_all(&store, id, vec![ordered("a"), ordered("a")]).await;
    let due = claim(&store).await;
    assert_eq!(ids(&due), [line[0].as_str()]);
    settle(&store, &due[0], AttemptNext::Dead).await;
    let due = claim(&store).await;
    assert_eq!(ids(&due), [line[1].as_str()]);

    // Redelivered while the second is in flight: it waits for it.
    assert_eq!(
        store
            .redeliver(Redeliver::One(line[0].clone()))
            .await
            .unwrap(),
        1
    );
    assert!(claim(&store).await.is_empty());
    settle(&store, &due[0], AttemptNext::Delivered).await;
    let again = claim(&store).await;
    assert_eq!(ids(&again), [line[0].as_str()]);

    // Several of one object redelivered at once still go one at a time.
    settle(&store, &again[0], AttemptNext::Delivered).await;
    let n = store.redeliver(Redeliver::Ids(line.clone())).await.unwrap();
    assert_eq!(n, 2);
    let due = claim(&store).await;
    assert_eq!(ids(&due), [line[0].as_str()]);
    settle(&store, &due[0], AttemptNext::Delivered).await;
    assert_eq!(ids(&claim(&store).await), [line[1].as_str()]);
}

pub(super) async fn a_pause_keeps_the_line(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let line = store_all(&store, id, vec![ordered("a"), ordered("a")]).await;
    let patch = |paused: Option<String>| InstancePatch {
        delivery_paused: Some(paused),
        ..InstancePatch::default()
    };
    store
        .update_instance(id, patch(Some("410".into())))
        .await
        .unwrap();
    assert!(claim(&store).await.is_empty());
    let held = |n: StoredNotification| n.held;
    let shown = |i: usize| store.get_notification(&line[i]);
    assert_eq!(held(shown(0).await.unwrap().unwrap()), Some(Held::Paused));
    assert_eq!(held(shown(1).await.unwrap().unwrap()), Some(Held::Waiting));
    store.update_instance(id, patch(None)).await.unwrap();
    let due = claim(&store).await;
    assert_eq!(
        ids(&due),
        [line[0].as_str()],
        "still in line after the pause"
    );
    settle(&store, &due[0], AttemptNext::Delivered).await;
    assert_eq!(ids(&claim(&store).await), [line[1].as_str()]);
}

pub(super) async fn ordered_notifications_stored_while_the_head_settles_all_go(store: TestStore) {
    // One writer stores notifications of one object one by one while a
    // deliverer claims and delivers them as they come: whatever the
    // interleaving, each is released exactly when the one before settles,
    // so all arrive, one at a time, in the order stored.
    const COUNT: usize = 40;
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let writer = {
        let store = (*store).clone();
        tokio::spawn(async move {
            let mut stored = Vec::new();
            for _ in 0..COUNT {
                let n = ordered("a");
                stored.push(n.id.clone());
                let mut r = receipt(id);
                r.outcome = ReceiptStatus::Accepted {
                    notifications: vec![n],
                };
                store.record_receipt(r).await.unwrap();
            }
            stored
        })
    };
    let mut delivered = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while delivered.len() < COUNT {
        assert!(
            std::time::Instant::now() < deadline,
            "stalled after {} of {COUNT}",
            delivered.len()
        );
        let due = claim(&store).await;
        assert!(due.len() <= 1, "{} in flight for one object", due.len());
        match due.first() {
            Some(n) => {
                settle(&store, n, AttemptNext::Delivered).await;
                delivered.push(n.id.clone());
            }
            None => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
    assert_eq!(delivered, writer.await.unwrap());
}

pub(super) async fn one_batch_of_ordered_unordered_and_stale_outcomes_applies_each_once(
    store: TestStore,
) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let plain = notification(&uuid::Uuid::now_v7().to_string());
    let line = store_all(&store, id, vec![plain, ordered("a"), ordered("a")]).await;
    let due = claim(&store).await;
    assert_eq!(ids(&due), [line[0].as_str(), line[1].as_str()]);
    // A stale record (a lease no claim holds) and the same outcome twice
    // beside the unordered and the ordered one's outcomes.
    let mut stale = outcome(&due[0], AttemptNext::Dead);
    stale.lease = "not-a-lease".into();
    let batch = vec![
        outcome(&due[1], AttemptNext::Delivered),
        stale,
        outcome(&due[0], AttemptNext::Delivered),
        outcome(&due[0], AttemptNext::Delivered),
    ];
    let recorded = store.record_attempts(batch).await.unwrap();
    assert_eq!(recorded.applied, 2);
    assert_eq!(recorded.stale, [line[0].clone(), line[0].clone()]);
    assert_eq!(recorded.released, 1, "the next of the object goes");
    for n in &line[..2] {
        let n = store.get_notification(n).await.unwrap().unwrap();
        assert_eq!(
            (n.state, n.attempt_log.len()),
            (DeliveryState::Delivered, 1)
        );
    }
    assert_eq!(ids(&claim(&store).await), [line[2].as_str()]);
}
