//! What only the SQLite backend promises: persistence in its file, group
//! commit of concurrent receipts, and a write-ahead log that stays bounded.
//! Behaviour every backend shares is in the conformance suite.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::super::test_support::{
    kept_and_deleted_instances, new_instance, receipt, receipt_with_message,
};
use super::super::{NewReceipt, NotificationQuery, ReceiptOutcome, Store};
use super::*;

fn open_file(dir: &tempfile::TempDir, opts: SqliteOptions) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(&dir.path().join("data/store.db"), opts).unwrap())
}

/// Waits, up to a deadline, until `check` holds.
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Keeps `sqlite`'s writer busy with a job until the returned sender is
/// used; the handle ends with the job.
async fn hold_writer(
    sqlite: Arc<SqliteStore>,
) -> (
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<Result<()>>,
) {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (busy, started) = tokio::sync::oneshot::channel::<()>();
    let held = tokio::spawn(async move {
        sqlite
            .write(move |_| {
                let _ = busy.send(());
                let _ = hold.recv();
                Ok(())
            })
            .await
    });
    started.await.unwrap();
    (release, held)
}

/// Records `receipts` with the writer held busy until every one is queued,
/// so they are batched for certain rather than by timing; their outcomes,
/// in order.
async fn record_queued_together(
    sqlite: Arc<SqliteStore>,
    store: &Store,
    receipts: Vec<NewReceipt>,
) -> Vec<Result<ReceiptOutcome>> {
    let count = receipts.len();
    let (release, held) = hold_writer(sqlite).await;
    let tasks: Vec<_> = receipts
        .into_iter()
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move { store.record_receipt(r).await })
        })
        .collect();
    wait_until("all receipts are queued", || store.stats().queued == count).await;
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    let mut outcomes = Vec::with_capacity(count);
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn notification_count(store: &Store) -> usize {
    let query = NotificationQuery {
        limit: 1_000_000,
        ..NotificationQuery::default()
    };
    store.list_notifications(query).await.unwrap().len()
}

#[tokio::test]
async fn data_and_deduplication_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::from_backend(open_file(&dir, SqliteOptions::default()));
    let instance = store.create_instance(new_instance("a")).await.unwrap();
    let outcome = store
        .record_receipt(receipt_with_message(instance.id, "m-1"))
        .await
        .unwrap();
    drop(store);

    let store = Store::from_backend(open_file(&dir, SqliteOptions::default()));
    assert_eq!(
        store.get_instance(instance.id).await.unwrap(),
        Some(instance.clone())
    );
    assert_eq!(notification_count(&store).await, 1);
    let again = store
        .record_receipt(receipt_with_message(instance.id, "m-1"))
        .await
        .unwrap();
    assert_eq!(again.receipt_id(), outcome.receipt_id());
    let next = store.create_instance(new_instance("b")).await.unwrap();
    assert!(next.id > instance.id);
}

#[tokio::test]
async fn the_in_memory_store_reads_on_its_writer() {
    let store = Store::from_backend(Arc::new(SqliteStore::open_in_memory().unwrap()));
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    for n in 1..=3 {
        store.record_receipt(receipt(id)).await.unwrap();
        assert_eq!(notification_count(&store).await, n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receipts_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = open_file(&dir, SqliteOptions::default());
    let store = Store::from_backend(sqlite.clone());
    let instance = store.create_instance(new_instance("a")).await.unwrap();
    let receipts = (0..1000)
        .map(|i| receipt_with_message(instance.id, &format!("m-{i}")))
        .collect();
    let outcomes = record_queued_together(sqlite, &store, receipts).await;

    let mut receipt_ids = HashSet::new();
    for outcome in outcomes {
        let outcome = outcome.unwrap();
        assert!(
            matches!(outcome, ReceiptOutcome::Stored { .. }),
            "{outcome:?}"
        );
        assert!(receipt_ids.insert(outcome.receipt_id().to_owned()));
    }
    assert_eq!(notification_count(&store).await, 1000);
    let stats = store.stats();
    assert_eq!(stats.receipts_stored, 1000);
    assert_eq!(stats.batches, 2, "1,000 receipts in batches of at most 512");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_checkpointed_off_the_writer_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let wal = dir.path().join("store.db-wal");
    let opts = SqliteOptions {
        wal_catch_up_pages: 256, // 1 MiB
        ..SqliteOptions::default()
    };
    let store = Store::from_backend(Arc::new(SqliteStore::open(&path, opts.clone()).unwrap()));
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
        db_len() > 18 << 20
    })
    .await;
    drop(store);
    let reopened = Store::from_backend(Arc::new(SqliteStore::open(&path, opts).unwrap()));
    assert_eq!(notification_count(&reopened).await, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_receipt_fails_alone_and_its_batch_still_commits_once() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = open_file(&dir, SqliteOptions::default());
    let store = Store::from_backend(sqlite.clone());
    let (kept, gone) = kept_and_deleted_instances(&store).await;
    let batches = store.stats().batches;

    // All five in one batch: the one for the deleted instance fails the
    // batch's first write, and the batch is written again. The last
    // repeats the first's message id.
    let receipts = [kept, gone, kept, kept, kept]
        .into_iter()
        .enumerate()
        .map(|(i, id)| receipt_with_message(id, &format!("m-{}", i % 4)))
        .collect();
    let outcomes = record_queued_together(sqlite, &store, receipts).await;
    assert!(
        matches!(outcomes[1], Err(ref e) if e.is_not_found()),
        "{:?}",
        outcomes[1]
    );
    for i in [2, 3] {
        assert!(
            matches!(outcomes[i], Ok(ReceiptOutcome::Stored { .. })),
            "{:?}",
            outcomes[i]
        );
    }
    // The two with one message id queue in either order: one is stored,
    // the other repeats it.
    let pair = [&outcomes[0], &outcomes[4]].map(|o| o.as_ref().unwrap());
    let stored = pair
        .iter()
        .find(|o| matches!(o, ReceiptOutcome::Stored { .. }))
        .expect("one of the pair is stored");
    assert!(
        pair.iter().any(|o| matches!(o, ReceiptOutcome::Duplicate { receipt_id } if receipt_id == stored.receipt_id())),
        "{pair:?}"
    );
    assert_eq!(notification_count(&store).await, 3);
    let stats = store.stats();
    assert_eq!(stats.batches, batches + 1, "the batch committed once");
    assert_eq!(
        (stats.receipts_failed, stats.receipts_duplicate),
        (1, 1),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_receipts_arrive_together_a_small_batch_waits_for_company() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions {
        commit_delay: Duration::from_secs(2),
        ..SqliteOptions::default()
    };
    let sqlite = open_file(&dir, opts);
    let store = Store::from_backend(sqlite.clone());
    let id = store.create_instance(new_instance("a")).await.unwrap().id;

    // After an idle spell a lone receipt commits at once.
    let started = Instant::now();
    store
        .record_receipt(receipt_with_message(id, "lone"))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a lone receipt waited {:?}",
        started.elapsed()
    );

    // Two receipts queued behind a busy writer share a batch: receipts are
    // arriving together.
    let (release, writer) = hold_writer(sqlite).await;
    let pair: Vec<_> = ["pair-1", "pair-2"]
        .map(|m| {
            let store = store.clone();
            tokio::spawn(async move { store.record_receipt(receipt_with_message(id, m)).await })
        })
        .into();
    wait_until("both receipts are queued", || store.stats().queued == 2).await;
    release.send(()).unwrap();
    writer.await.unwrap().unwrap();
    for task in pair {
        task.await.unwrap().unwrap();
    }
    let batches = store.stats().batches;

    // So the next receipt waits, and one sent meanwhile joins its batch.
    let first = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .record_receipt(receipt_with_message(id, "first"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    store
        .record_receipt(receipt_with_message(id, "second"))
        .await
        .unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(
        store.stats().batches,
        batches + 1,
        "the second receipt joined the first one's batch"
    );
    assert_eq!(notification_count(&store).await, 5);
}
