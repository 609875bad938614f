//! Instances: create, read, update (with and without a version), delete.

use std::collections::HashSet;

use super::super::test_support::{new_instance, receipt_notifying};
use super::super::{ErrorKind, Held, InstancePatch, NotificationQuery};
use super::{notifications_of, TestStore};

fn renamed(name: &str) -> InstancePatch {
    InstancePatch {
        name: Some(name.into()),
        ..InstancePatch::default()
    }
}

pub(super) async fn crud(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let b = store.create_instance(new_instance("b")).await.unwrap();
    assert_ne!(a.id, b.id);
    assert_ne!(a.token, b.token);
    assert_eq!((a.version, b.version), (1, 1));
    assert_eq!(store.get_instance(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.list_instances().await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    let patch = InstancePatch {
        events_enabled: Some(false),
        tags: Some(vec![]),
        ..InstancePatch::default()
    };
    let updated = store.update_instance(a.id, patch).await.unwrap().unwrap();
    assert!(!updated.events_enabled && updated.tags.is_empty());
    assert_eq!(updated.name, "a");
    assert_eq!(updated.version, 2);
    assert!(updated.updated_at >= a.updated_at);
    let unchanged = store
        .update_instance(b.id, InstancePatch::default())
        .await
        .unwrap();
    assert_eq!(unchanged, Some(b.clone()), "an empty patch changes nothing");

    assert!(store.delete_instance(a.id).await.unwrap());
    assert!(store.get_instance(a.id).await.unwrap().is_none());
    assert!(!store.delete_instance(a.id).await.unwrap());
    let missing = store.update_instance(a.id, renamed("x")).await.unwrap();
    assert!(missing.is_none());
    let missing = store.update_instance_at(a.id, 2, renamed("x")).await;
    assert!(missing.unwrap().is_none());
    let next = store.create_instance(new_instance("c")).await.unwrap();
    assert!(next.id > b.id, "ids are never reused");
}

pub(super) async fn tokens_are_unique(store: TestStore) {
    let mut tokens = HashSet::new();
    for i in 0..50 {
        let instance = store
            .create_instance(new_instance(&format!("i{i}")))
            .await
            .unwrap();
        assert!(tokens.insert(instance.token));
    }
}

pub(super) async fn versioned_updates(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let first = store
        .update_instance_at(a.id, a.version, renamed("first"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.name.as_str(), first.version), ("first", 2));
    // A second writer that read version 1 loses.
    let err = store
        .update_instance_at(a.id, a.version, renamed("second"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let err = store
        .update_instance_at(a.id, a.version, InstancePatch::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "even an empty patch checks"
    );
    let kept = store.get_instance(a.id).await.unwrap().unwrap();
    assert_eq!((kept.name.as_str(), kept.version), ("first", 2));

    // Of several writers racing from the same version, exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = (*store).clone();
            tokio::spawn(async move {
                store
                    .update_instance_at(a.id, 2, renamed(&format!("racer {i}")))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(Some(_)) => won += 1,
            Ok(None) => panic!("the instance exists"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.get_instance(a.id).await.unwrap().unwrap().version, 3);
}

pub(super) async fn a_conflicting_update_writes_nothing(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    store
        .record_receipt(receipt_notifying(a.id, "n-1"))
        .await
        .unwrap();
    store.update_instance(a.id, renamed("b")).await.unwrap();
    let stale = InstancePatch {
        name: Some("stale".into()),
        delivery_paused: Some(Some("410 Gone".into())),
        retire_signing_key: Some((
            "old-key".into(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        )),
        ..InstancePatch::default()
    };
    let err = store.update_instance_at(a.id, 1, stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let kept = store.get_instance(a.id).await.unwrap().unwrap();
    assert_eq!(kept.name, "b");
    assert!(kept.delivery_paused.is_none());
    assert!(store.retired_keys(a.id).await.unwrap().is_empty());
    let due = store
        .claim_due(
            time::OffsetDateTime::now_utc(),
            std::time::Duration::from_secs(30),
            10,
        )
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "delivery was not paused");
}

pub(super) async fn pausing_holds_the_instance_only_and_resuming_releases(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let b = store.create_instance(new_instance("b")).await.unwrap();
    store
        .record_receipt(receipt_notifying(a.id, "n-1"))
        .await
        .unwrap();
    let pause = InstancePatch {
        delivery_paused: Some(Some("the receiver answered 410 Gone".into())),
        retire_signing_key: Some((
            "old-key".into(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        )),
        ..InstancePatch::default()
    };
    let paused = store.update_instance(a.id, pause).await.unwrap().unwrap();
    assert!(paused.delivery_paused.is_some());
    assert_eq!(store.retired_keys(a.id).await.unwrap(), vec!["old-key"]);
    let now = time::OffsetDateTime::now_utc();
    let lease = std::time::Duration::from_secs(30);
    assert!(store.claim_due(now, lease, 10).await.unwrap().is_empty());
    // Arriving while paused: held as well; another instance's go.
    store
        .record_receipt(receipt_notifying(a.id, "n-2"))
        .await
        .unwrap();
    store
        .record_receipt(receipt_notifying(b.id, "n-b"))
        .await
        .unwrap();
    assert_eq!(claim_ids(&store, lease).await, vec!["n-b"]);
    let listed = notifications_of(&store, a.id).await;
    assert_eq!(listed.len(), 2);
    for n in &listed {
        assert_eq!(n.held, Some(Held::Paused), "{}", n.id);
        assert!(n.next_attempt_at.is_none(), "{} shows no due time", n.id);
    }

    let resume = InstancePatch {
        delivery_paused: Some(None),
        ..InstancePatch::default()
    };
    store.update_instance(a.id, resume).await.unwrap();
    let listed = notifications_of(&store, a.id).await;
    assert!(listed
        .iter()
        .all(|n| n.held.is_none() && n.next_attempt_at.is_some()));
    assert_eq!(claim_ids(&store, lease).await, vec!["n-1", "n-2"]);
}

/// Claims what is due now; the ids taken, sorted.
async fn claim_ids(store: &TestStore, lease: std::time::Duration) -> Vec<String> {
    let now = time::OffsetDateTime::now_utc();
    let mut ids: Vec<String> = store
        .claim_due(now, lease, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    ids.sort();
    ids
}

pub(super) async fn deleting_removes_what_the_instance_owns(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let other = store.create_instance(new_instance("b")).await.unwrap();
    for (id, n) in [(a.id, "n-a"), (other.id, "n-b")] {
        store
            .record_receipt(receipt_notifying(id, n))
            .await
            .unwrap();
    }
    store
        .record_poll(super::super::PollWrite {
            instance_id: a.id,
            resource: "tickets".into(),
            page: None,
            checkpoint: Some(time::OffsetDateTime::now_utc()),
            fence: None,
        })
        .await
        .unwrap();
    assert!(store.delete_instance(a.id).await.unwrap());
    assert!(notifications_of(&store, a.id).await.is_empty());
    assert!(store.get_notification("n-a").await.unwrap().is_none());
    assert!(store.poll_checkpoints(a.id).await.unwrap().is_empty());
    assert_eq!(notifications_of(&store, other.id).await.len(), 1);
    let all = store
        .list_notifications(NotificationQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}
