//! Behaviour of the store as its callers see it: instances, persistence,
//! group commit under concurrency.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::super::outbox::{AttemptNext, NewNotification, NotificationSource};
use super::super::receipt::ReceiptStatus;
use super::super::test_support::{failed_receipt, new_instance, receipt, receipt_with_message, T0};
use super::*;

fn file_store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("data/store.db"), StoreOptions::default()).unwrap()
}

/// Waits, up to a deadline, until `check` holds.
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn instances_can_be_created_read_updated_and_deleted() {
    let store = Store::open_in_memory().unwrap();
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let b = store.create_instance(new_instance("b")).await.unwrap();
    assert_ne!(a.id, b.id);
    assert_ne!(a.token, b.token);
    assert_eq!(store.get_instance(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.get_instance_by_token(&b.token).await.unwrap(),
        Some(b.clone())
    );
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
    assert!(updated.updated_at >= a.updated_at);
    let unchanged = store
        .update_instance(b.id, InstancePatch::default())
        .await
        .unwrap();
    assert_eq!(unchanged, Some(b.clone()));

    assert!(store.delete_instance(a.id).await.unwrap());
    assert!(store.get_instance(a.id).await.unwrap().is_none());
    assert!(store
        .get_instance_by_token(&a.token)
        .await
        .unwrap()
        .is_none());
    assert!(!store.delete_instance(a.id).await.unwrap());
    let missing = store.update_instance(
        a.id,
        InstancePatch {
            name: Some("x".into()),
            ..Default::default()
        },
    );
    assert!(missing.await.unwrap().is_none());
}

#[tokio::test]
async fn instance_tokens_are_unique() {
    let store = Store::open_in_memory().unwrap();
    let mut tokens = HashSet::new();
    for i in 0..50 {
        let instance = store
            .create_instance(new_instance(&format!("i{i}")))
            .await
            .unwrap();
        assert!(tokens.insert(instance.token));
    }
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir);
    let instance = store.create_instance(new_instance("a")).await.unwrap();
    let outcome = store
        .record_receipt(receipt_with_message(instance.id, "m-1"))
        .await
        .unwrap();
    drop(store);

    let store = file_store(&dir);
    assert_eq!(
        store.get_instance(instance.id).await.unwrap(),
        Some(instance.clone())
    );
    let kept = store
        .get_receipt(outcome.receipt_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.message_id.as_deref(), Some("m-1"));
    let events = store
        .list_events(EventQuery::for_instance(instance.id))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        store.get_event(&events[0].id).await.unwrap(),
        Some(events[0].clone())
    );
    let again = store
        .record_receipt(receipt_with_message(instance.id, "m-1"))
        .await
        .unwrap();
    assert_eq!(
        again.receipt_id(),
        outcome.receipt_id(),
        "de-duplication spans restarts"
    );
    let next = store.create_instance(new_instance("b")).await.unwrap();
    assert!(next.id > instance.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receipts_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir);
    let instance = store.create_instance(new_instance("a")).await.unwrap();

    // Hold the writer busy until every receipt is queued, so the batching
    // is certain rather than a matter of timing.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (busy, started) = tokio::sync::oneshot::channel::<()>();
    let writer = store.clone();
    let held = tokio::spawn(async move {
        writer
            .write(move |_| {
                let _ = busy.send(());
                let _ = hold.recv();
                Ok(())
            })
            .await
    });
    started.await.unwrap();

    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let store = store.clone();
            let r = receipt_with_message(instance.id, &format!("m-{i}"));
            tokio::spawn(async move { store.record_receipt(r).await })
        })
        .collect();
    wait_until("all receipts are queued", || store.stats().queued == 1000).await;
    release.send(()).unwrap();
    held.await.unwrap().unwrap();

    let mut receipt_ids = HashSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(
            matches!(outcome, ReceiptOutcome::Stored { .. }),
            "{outcome:?}"
        );
        assert!(receipt_ids.insert(outcome.receipt_id().to_owned()));
    }
    assert_eq!(store.count_events(instance.id).await.unwrap(), 1000);
    let stats = store.stats();
    assert_eq!(stats.receipts_stored, 1000);
    assert_eq!(stats.batches, 2, "1,000 receipts in batches of at most 512");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_of_one_message_are_stored_once() {
    let store = Store::open_in_memory().unwrap();
    let instance = store.create_instance(new_instance("a")).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            let r = receipt_with_message(instance.id, "same");
            tokio::spawn(async move { store.record_receipt(r).await.unwrap() })
        })
        .collect();
    let mut originals = HashSet::new();
    for task in tasks {
        originals.insert(task.await.unwrap().receipt_id().to_owned());
    }
    assert_eq!(originals.len(), 1);
    assert_eq!(store.count_events(instance.id).await.unwrap(), 1);
    let stats = store.stats();
    assert_eq!((stats.receipts_stored, stats.receipts_duplicate), (1, 199));
}

#[tokio::test]
async fn a_receipt_for_a_deleted_instance_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir);
    let kept = store.create_instance(new_instance("kept")).await.unwrap();
    let gone = store.create_instance(new_instance("gone")).await.unwrap();
    store.record_receipt(receipt(gone.id)).await.unwrap();
    assert!(store.delete_instance(gone.id).await.unwrap());

    let (a, b, c) = tokio::join!(
        store.record_receipt(receipt(kept.id)),
        store.record_receipt(receipt(gone.id)),
        store.record_receipt(receipt(kept.id)),
    );
    assert!(a.is_ok() && c.is_ok());
    assert!(matches!(b, Err(ref e) if e.is_not_found()), "{b:?}");
    assert_eq!(store.count_events(kept.id).await.unwrap(), 2);
    assert_eq!(store.count_events(gone.id).await.unwrap(), 0);
    assert_eq!(store.stats().receipts_failed, 1);
}

#[tokio::test]
async fn reads_see_what_was_just_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir);
    let instance = store.create_instance(new_instance("a")).await.unwrap();
    for n in 1..=5u64 {
        store.record_receipt(receipt(instance.id)).await.unwrap();
        assert_eq!(store.count_events(instance.id).await.unwrap(), n);
    }
    let since = store.list_events(EventQuery {
        since: Some(T0),
        ..EventQuery::default()
    });
    assert_eq!(since.await.unwrap().len(), 5, "stored after T0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_checkpointed_off_the_writer_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let wal = dir.path().join("store.db-wal");
    let opts = StoreOptions {
        wal_catch_up_pages: 256, // 1 MiB
        ..StoreOptions::default()
    };
    let store = Store::open(&path, opts.clone()).unwrap();
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    // About 60 MiB of pages in all, 400 concurrent callers at a time.
    let total = 12_000;
    let mut largest_log = 0;
    for round in 0..(total / 400) {
        let writes: Vec<_> = (0..400)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.record_receipt(receipt(id)).await })
            })
            .collect();
        for write in writes {
            assert!(write.await.unwrap().is_ok(), "round {round}");
        }
        largest_log = largest_log.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // Unbounded, the log would hold everything (about 60 MiB). Bounded, it
    // restarts once the checkpointer sees it past 1 MiB: how far it gets
    // meanwhile depends on the write rate (about 10 MiB seen here).
    assert!(
        largest_log < 24 << 20,
        "the log grew to {largest_log} bytes instead of restarting"
    );
    // The background checkpoint copies what the last writes left in the log.
    let db_len = || std::fs::metadata(&path).unwrap().len();
    wait_until("the database file holds the receipts", || {
        db_len() > 48 << 20
    })
    .await;
    drop(store);
    let reopened = Store::open(&path, opts).unwrap();
    assert_eq!(reopened.count_events(id).await.unwrap(), total);
}

/// A receipt carrying one notification with this id.
fn receipt_notifying(instance_id: i64, notification: &str) -> NewReceipt {
    let mut r = receipt(instance_id);
    if let ReceiptStatus::Accepted { notifications, .. } = &mut r.outcome {
        notifications.push(NewNotification {
            id: notification.into(),
            source: NotificationSource::Webhook,
            content_type: "application/json".into(),
            body: bytes::Bytes::from_static(b"{}"),
            event_count: 1,
        });
    }
    r
}

fn attempt(notification: &str, next: AttemptNext) -> AttemptRecord {
    AttemptRecord {
        notification_id: notification.into(),
        attempted_at: time::OffsetDateTime::now_utc(),
        status_code: Some(200),
        error: None,
        latency_ms: 1,
        next,
    }
}

#[tokio::test]
async fn pruning_deletes_only_what_is_old_and_settled() {
    let store = Store::open_in_memory().unwrap();
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let stored = |o: ReceiptOutcome| o.receipt_id().to_owned();
    let delivered = stored(
        store
            .record_receipt(receipt_notifying(id, "n-delivered"))
            .await
            .unwrap(),
    );
    let pending = stored(
        store
            .record_receipt(receipt_notifying(id, "n-pending"))
            .await
            .unwrap(),
    );
    let dead = stored(
        store
            .record_receipt(receipt_notifying(id, "n-dead"))
            .await
            .unwrap(),
    );
    let failed = stored(store.record_receipt(failed_receipt(id)).await.unwrap());
    // More old, settled receipts than one chunk holds, so pruning takes
    // several writes.
    let mut bulk = Vec::new();
    for _ in 0..PRUNE_CHUNK + 10 {
        bulk.push(stored(store.record_receipt(receipt(id)).await.unwrap()));
    }
    store
        .record_attempts(vec![
            attempt("n-delivered", AttemptNext::Delivered),
            attempt("n-dead", AttemptNext::Dead),
        ])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let recent = stored(
        store
            .record_receipt(receipt_notifying(id, "n-recent"))
            .await
            .unwrap(),
    );
    store
        .record_attempts(vec![attempt("n-recent", AttemptNext::Delivered)])
        .await
        .unwrap();
    let events_before = store.count_events(id).await.unwrap();

    let pruned = store.prune(cutoff).await.unwrap();

    assert_eq!(pruned.receipts, 1 + bulk.len() as u64, "{pruned:?}");
    let exists = |r: String| {
        let store = store.clone();
        async move { store.get_receipt(&r).await.unwrap().is_some() }
    };
    assert!(!exists(delivered).await, "old and delivered: gone");
    assert!(store
        .get_notification("n-delivered")
        .await
        .unwrap()
        .is_none());
    assert!(!exists(bulk[0].clone()).await && !exists(bulk[PRUNE_CHUNK + 9].clone()).await);
    assert!(exists(pending).await, "still to deliver: kept");
    assert!(
        exists(dead).await,
        "dead-lettered, may be redelivered: kept"
    );
    assert!(store.get_notification("n-dead").await.unwrap().is_some());
    assert!(exists(failed).await, "failed, kept for reprocessing");
    assert!(exists(recent).await, "newer than the cutoff: kept");
    assert!(store.get_notification("n-recent").await.unwrap().is_some());
    // Every pruned receipt carried one event.
    assert_eq!(
        store.count_events(id).await.unwrap(),
        events_before - pruned.receipts
    );
    assert_eq!(store.prune(cutoff).await.unwrap(), Pruned::default());
}
