//! Poll pages: notifications and checkpoint in one transaction, and
//! checkpoints that only move forward.

use time::OffsetDateTime;

use super::super::test_support::{new_instance, receipt, T0};
use super::super::{NewReceipt, PollWrite};
use super::{notifications_of, TestStore};

fn write(id: i64, page: Option<NewReceipt>, checkpoint: Option<i64>) -> PollWrite {
    PollWrite {
        instance_id: id,
        resource: "tickets".into(),
        page,
        checkpoint: checkpoint.map(at),
        fence: None,
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(seconds)
}

/// A page as the poller makes it: no vendor message id.
fn page(id: i64) -> NewReceipt {
    receipt(id)
}

pub(super) async fn a_page_stores_its_notifications_and_checkpoint(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let outcome = store
        .record_poll(write(id, Some(page(id)), Some(60)))
        .await
        .unwrap();
    assert!(outcome.receipt_id.is_some() && outcome.checkpoint_moved);
    assert_eq!(notifications_of(&store, id).await.len(), 1);
    let kept = store.poll_checkpoints(id).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].resource.as_str(), kept[0].checkpoint),
        ("tickets", at(60))
    );

    // A page without a checkpoint leaves it; an empty window moves it.
    let outcome = store
        .record_poll(write(id, Some(page(id)), None))
        .await
        .unwrap();
    assert!(!outcome.checkpoint_moved);
    assert_eq!(
        store.poll_checkpoints(id).await.unwrap()[0].checkpoint,
        at(60)
    );
    let outcome = store.record_poll(write(id, None, Some(90))).await.unwrap();
    assert!(outcome.receipt_id.is_none() && outcome.checkpoint_moved);
    assert_eq!(
        store.poll_checkpoints(id).await.unwrap()[0].checkpoint,
        at(90)
    );
}

pub(super) async fn checkpoints_only_move_forward(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    store.record_poll(write(id, None, Some(100))).await.unwrap();
    let back = store
        .record_poll(write(id, Some(page(id)), Some(40)))
        .await
        .unwrap();
    assert!(!back.checkpoint_moved, "refused to go back");
    assert!(back.receipt_id.is_some(), "the page itself is stored");
    assert_eq!(
        store.poll_checkpoints(id).await.unwrap()[0].checkpoint,
        at(100)
    );
    let same = store.record_poll(write(id, None, Some(100))).await.unwrap();
    assert!(
        same.checkpoint_moved,
        "writing the same point again is fine"
    );
    // Racing pages: the furthest wins whatever order they commit in.
    let pages: Vec<_> = (1..=20)
        .map(|i| {
            let store = (*store).clone();
            tokio::spawn(async move { store.record_poll(write(id, None, Some(100 + i))).await })
        })
        .collect();
    for p in pages {
        p.await.unwrap().unwrap();
    }
    assert_eq!(
        store.poll_checkpoints(id).await.unwrap()[0].checkpoint,
        at(120)
    );
}

pub(super) async fn a_failing_page_stores_nothing(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let misfiled = PollWrite {
        instance_id: id,
        ..write(id + 50, Some(page(id + 50)), Some(30))
    };
    let (bad, missing, good) = tokio::join!(
        store.record_poll(misfiled),
        store.record_poll(write(id + 50, None, Some(30))),
        store.record_poll(write(id, Some(page(id)), None)),
    );
    assert_eq!(
        bad.unwrap_err().kind(),
        super::super::ErrorKind::InvalidValue
    );
    assert!(missing.unwrap_err().is_not_found());
    assert!(good.is_ok());
    assert_eq!(notifications_of(&store, id).await.len(), 1);
    assert!(store.poll_checkpoints(id).await.unwrap().is_empty());
}
