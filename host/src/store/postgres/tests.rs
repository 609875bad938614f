//! What only several writers on one PostgreSQL database show: two stores
//! (two pools, as two processes or replicas would have) racing the same
//! vendor message and the same due notifications, a stale claimant's
//! outcome changing no row, migrations started at once, large batches with
//! a bad receipt or with repeats among new messages, an instance deleted
//! under load, and an outage of the server. Behaviour every backend shares
//! is in the conformance suite.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::super::conformance::{fresh_database, notifications_of};
use super::super::test_support::{
    kept_and_deleted_instances, new_instance, receipt, receipt_notifying, receipt_with_message,
};
use super::super::timestamp;
use super::super::{AttemptNext, AttemptRecord, ErrorKind, ReceiptOutcome, Store, StoreConfig};

const LEASE: Duration = Duration::from_secs(30);

pub(super) async fn open(url: &str) -> Store {
    Store::open(&StoreConfig::Postgres {
        url: url.to_string(),
    })
    .await
    .unwrap()
}

/// Two stores on one fresh database.
async fn two_stores() -> (Store, Store) {
    let url = fresh_database().await;
    (open(&url).await, open(&url).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_racing_one_message_store_it_once() {
    let (a, b) = two_stores().await;
    let id = a.create_instance(new_instance("a")).await.unwrap().id;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                store
                    .record_receipt(receipt_with_message(id, "same"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut stored = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        if matches!(outcome, ReceiptOutcome::Stored { .. }) {
            stored += 1;
        }
        ids.insert(outcome.receipt_id().to_owned());
    }
    assert_eq!(stored, 1, "exactly one writer stores the message");
    assert_eq!(ids.len(), 1, "every other writer names that receipt");
    assert_eq!(notifications_of(&a, id).await.len(), 1);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.receipts_stored + sb.receipts_stored, 1);
    assert_eq!(sa.receipts_duplicate + sb.receipts_duplicate, 199);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_claimers_never_get_the_same_notification() {
    let (a, b) = two_stores().await;
    let id = a.create_instance(new_instance("a")).await.unwrap().id;
    for i in 0..300 {
        a.record_receipt(receipt_notifying(id, &format!("n-{i:03}")))
            .await
            .unwrap();
    }
    let now = timestamp::now();
    let claims: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.claim_due(now, LEASE, 25).await.unwrap() })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut leases = HashSet::new();
    for claim in claims {
        for n in claim.await.unwrap() {
            assert!(seen.insert(n.id.clone()), "{} claimed twice", n.id);
            leases.insert(n.lease);
        }
    }
    assert_eq!(seen.len(), 300, "every due notification is claimed once");
    assert!(leases.len() > 1, "each claim has its own lease token");
    assert!(a.claim_due(now, LEASE, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_claimants_outcome_changes_no_row() {
    let (a, b) = two_stores().await;
    let id = a.create_instance(new_instance("a")).await.unwrap().id;
    a.record_receipt(receipt_notifying(id, "n-1"))
        .await
        .unwrap();
    let t0 = timestamp::now();
    let first = a.claim_due(t0, LEASE, 10).await.unwrap().remove(0);
    // The lease runs out; the other store's claimant takes over.
    let later = t0 + LEASE + Duration::from_secs(1);
    let second = b.claim_due(later, LEASE, 10).await.unwrap().remove(0);
    assert_eq!(second.id, "n-1");
    assert_ne!(first.lease, second.lease);
    let outcome = |n: &super::super::DueNotification, status, next| AttemptRecord {
        notification_id: n.id.clone(),
        lease: n.lease.clone(),
        attempted_at: timestamp::now(),
        status_code: Some(status),
        error: None,
        latency_ms: 5,
        response_body: bytes::Bytes::new(),
        next,
    };
    // The new claimant delivers; the stale one's failure arrives late.
    let applied = b
        .record_attempts(vec![outcome(&second, 200, AttemptNext::Delivered)])
        .await
        .unwrap();
    assert_eq!((applied.applied, applied.stale.len()), (1, 0));
    let stale = a
        .record_attempts(vec![outcome(&first, 500, AttemptNext::Dead)])
        .await
        .unwrap();
    assert_eq!(stale.applied, 0, "0 rows affected");
    assert_eq!(stale.stale, vec!["n-1".to_string()]);
    let kept = a.get_notification("n-1").await.unwrap().unwrap();
    assert_eq!(kept.state, super::super::DeliveryState::Delivered);
    assert_eq!(kept.last_status, Some(200));
    assert_eq!(
        kept.attempt_log.len(),
        1,
        "only the holder's attempt is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_opened_at_once_migrate_once() {
    let url = fresh_database().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap());
    }
    let made = stores[0].create_instance(new_instance("a")).await.unwrap();
    assert_eq!(
        stores[3].get_instance(made.id).await.unwrap(),
        Some(made),
        "every store sees one schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_batch_with_a_bad_receipt_stores_the_rest() {
    let url = fresh_database().await;
    let store = open(&url).await;
    let (kept, gone) = kept_and_deleted_instances(&store).await;
    // Far more than 64 receipts queued at once: they share transactions.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            let target = if i == 150 { gone } else { kept };
            tokio::spawn(async move { store.record_receipt(receipt(target)).await })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => {}
            Err(e) => {
                assert!(e.is_not_found(), "{e}");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 1);
    assert_eq!(notifications_of(&store, kept).await.len(), 299);
    let stats = store.stats();
    assert_eq!((stats.receipts_stored, stats.receipts_failed), (299, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_failing_mid_batch_leaves_no_connection_in_its_transaction() {
    let url = fresh_database().await;
    let store = open(&url).await;
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    // PostgreSQL refuses a NUL in text: the receipt's insert fails while
    // the batch's other statements are already on their way.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            let mut r = receipt(id);
            if i == 100 {
                r.element_key = "connect\0wise".into();
            }
            tokio::spawn(async move { store.record_receipt(r).await })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        if task.await.unwrap().is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 1);
    // Every pooled connection was handed back outside a transaction: later
    // batches commit, one at a time and many at once.
    for _ in 0..20 {
        store.record_receipt(receipt(id)).await.unwrap();
    }
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_receipt(receipt(id)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(rows_in(&url, "receipts").await, 419);
    assert_eq!(notifications_of(&store, id).await.len(), 419);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_mixing_repeats_and_new_messages_stores_only_the_new() {
    let url = fresh_database().await;
    let store = open(&url).await;
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let mut originals = std::collections::HashMap::new();
    for k in 0..10 {
        let message = format!("seen-{k}");
        let outcome = store
            .record_receipt(receipt_with_message(id, &message))
            .await
            .unwrap();
        originals.insert(message, outcome.receipt_id().to_owned());
    }
    // Sent at once, the repeats land in batches with new messages: such a
    // batch is written again statement by statement.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            let message = if i % 3 == 0 {
                format!("seen-{}", i % 10)
            } else {
                format!("new-{i}")
            };
            tokio::spawn(async move {
                let outcome = store
                    .record_receipt(receipt_with_message(id, &message))
                    .await
                    .unwrap();
                (message, outcome)
            })
        })
        .collect();
    for task in tasks {
        let (message, outcome) = task.await.unwrap();
        match (originals.get(&message), outcome) {
            (Some(original), ReceiptOutcome::Duplicate { receipt_id }) => {
                assert_eq!(&receipt_id, original, "{message}")
            }
            (None, ReceiptOutcome::Stored { .. }) => {}
            (original, outcome) => panic!("{message}: {outcome:?} (original {original:?})"),
        }
    }
    assert_eq!(notifications_of(&store, id).await.len(), 210);
    for table in [
        "receipts",
        "notifications",
        "notification_events",
        "delivery_queue",
    ] {
        assert_eq!(rows_in(&url, table).await, 210, "{table}");
    }
    let stats = store.stats();
    assert_eq!(
        (stats.receipts_stored, stats.receipts_duplicate),
        (210, 100)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_is_unavailable_and_the_store_recovers_by_itself() {
    let cluster = tokio::task::spawn_blocking(throwaway_postgres::Cluster::start)
        .await
        .unwrap();
    let url = {
        let cluster = &cluster;
        tokio::task::block_in_place(|| cluster.create_database())
    };
    let store = open(&url).await;
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    store.record_receipt(receipt(id)).await.unwrap();
    store.check().await.unwrap();

    tokio::task::block_in_place(|| cluster.stop_immediate());
    let err = store.record_receipt(receipt(id)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(
        store.check().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    tokio::task::block_in_place(|| cluster.start_server());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.record_receipt(receipt(id)).await {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                assert!(Instant::now() < deadline, "not recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    store.check().await.unwrap();
    assert_eq!(notifications_of(&store, id).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_an_instance_under_load_leaves_nothing_of_it() {
    let url = fresh_database().await;
    let (a, b) = (open(&url).await, open(&url).await);
    let id = a.create_instance(new_instance("a")).await.unwrap().id;
    let spawn = |n: usize| -> Vec<_> {
        (0..n)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { store.record_receipt(receipt(id)).await })
            })
            .collect()
    };
    // Batches in flight on both pools while the instance is deleted.
    let racing = spawn(400);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(a.delete_instance(id).await.unwrap());
    let after = spawn(50);
    let mut stored = 0;
    for task in racing {
        match task.await.unwrap() {
            Ok(_) => stored += 1,
            Err(e) => assert!(e.is_not_found(), "{e}"),
        }
    }
    assert!(stored > 0, "some receipts were stored before the deletion");
    for task in after {
        let e = task.await.unwrap().expect_err("the instance is gone");
        assert!(e.is_not_found(), "{e}");
    }
    for table in ["receipts", "notifications"] {
        let left = rows_in(&url, table).await;
        assert_eq!(left, 0, "rows of the deleted instance left in {table}");
    }
}

/// A plain connection to the database at `url`, for statements the store
/// does not make.
pub(super) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// How many rows `table` of the database at `url` holds.
pub(super) async fn rows_in(url: &str, table: &str) -> i64 {
    connect(url)
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// A fresh database with one instance (`name`), and a plain connection
/// to it for statements the store does not make.
pub(super) async fn database_with_instance(name: &str) -> (tokio_postgres::Client, i64) {
    let url = fresh_database().await;
    let instance = open(&url)
        .await
        .create_instance(new_instance(name))
        .await
        .unwrap()
        .id;
    (connect(&url).await, instance)
}

/// The plan of `explain`, an `EXPLAIN (…, FORMAT JSON) …` sent as a simple
/// query (so it may `EXECUTE` a statement `PREPARE`d on `client`).
pub(super) async fn explain_json(
    client: &tokio_postgres::Client,
    explain: &str,
) -> serde_json::Value {
    let rows = client.simple_query(explain).await.unwrap();
    let plan = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap();
    serde_json::from_str(&plan).unwrap()
}

/// Shared buffers (hit or read) a statement touched, from its
/// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` plan.
pub(super) fn buffers_touched(plan: &serde_json::Value) -> i64 {
    let top = &plan[0]["Plan"];
    top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap()
}
