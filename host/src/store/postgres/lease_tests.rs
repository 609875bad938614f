//! Replica leases on one real PostgreSQL database: partitions split to fair
//! shares, a dead replica's partitions taken over at a higher epoch once
//! its lease expired, fenced poll pages writing no row, and singletons held
//! by one replica at a time.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::super::conformance::{fresh_database, notifications_of};
use super::super::leases::{Fence, HeldPartition, Leases};
use super::super::test_support::{new_instance, receipt_notifying};
use super::super::{PollWrite, Store, StoreConfig};

/// Short leases, so expiry is quick to wait for.
const LEASE: Duration = Duration::from_millis(1500);

async fn open(url: &str) -> (Store, Arc<dyn Leases>) {
    let store = Store::open(&StoreConfig::Postgres {
        url: url.to_string(),
    })
    .await
    .unwrap();
    let leases = store.leases().expect("PostgreSQL has leases");
    (store, leases)
}

/// One heartbeat of `replica` as the cluster task does it.
async fn beat(leases: &dyn Leases, replica: &str) -> Vec<HeldPartition> {
    let alive = leases
        .heartbeat(replica, OffsetDateTime::now_utc(), LEASE)
        .await
        .unwrap();
    let fair = 256usize.div_ceil(alive);
    leases
        .balance_partitions(replica, LEASE, fair)
        .await
        .unwrap()
}

fn numbers(held: &[HeldPartition]) -> BTreeSet<u16> {
    held.iter().map(|p| p.partition).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_to_fair_shares_and_take_over_a_dead_ones_partitions() {
    let url = fresh_database().await;
    let (_a_store, a) = open(&url).await;
    let (_b_store, b) = open(&url).await;
    let (_c_store, c) = open(&url).await;
    assert_eq!(beat(a.as_ref(), "a").await.len(), 256, "alone, a takes all");
    // b and c join: each first finds nothing free, then a gives up its
    // surplus and they take it.
    for _ in 0..3 {
        beat(b.as_ref(), "b").await;
        beat(c.as_ref(), "c").await;
        beat(a.as_ref(), "a").await;
    }
    let (ha, hb, hc) = (
        beat(a.as_ref(), "a").await,
        beat(b.as_ref(), "b").await,
        beat(c.as_ref(), "c").await,
    );
    let mut sizes = [ha.len(), hb.len(), hc.len()];
    sizes.sort_unstable();
    assert_eq!(
        sizes,
        [84, 86, 86],
        "three replicas share 256 as evenly as ceil allows"
    );
    let all: BTreeSet<u16> = numbers(&ha)
        .union(&numbers(&hb))
        .chain(numbers(&hc).iter())
        .copied()
        .collect();
    assert_eq!(all.len(), 256, "no partition owned twice, none left over");
    let listed = a.replicas(LEASE).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(listed[0].partitions.len(), ha.len());

    // c dies (stops heartbeating): after its lease expires a and b take its
    // partitions over, each at a higher epoch than c held it at.
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken = beat(a.as_ref(), "a").await;
        taken.extend(beat(b.as_ref(), "b").await);
    }
    assert_eq!(numbers(&taken).len(), 256, "a and b hold every partition");
    for old in &hc {
        let new = taken.iter().find(|p| p.partition == old.partition).unwrap();
        assert!(
            new.epoch > old.epoch,
            "partition {} re-owned at a higher epoch",
            old.partition
        );
    }
    let alive: Vec<String> = a
        .replicas(LEASE)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(alive, ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_under_a_stale_epoch_writes_no_row() {
    let url = fresh_database().await;
    let (store, a) = open(&url).await;
    let (_b_store, b) = open(&url).await;
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let held = beat(a.as_ref(), "a").await;
    let partition = super::super::partition_of(id);
    let epoch = held
        .iter()
        .find(|p| p.partition == partition)
        .unwrap()
        .epoch;
    let fence = Fence {
        partition,
        owner: "a".into(),
        epoch,
    };
    let page = |n: &str, seconds: i64, fence: &Fence| PollWrite {
        instance_id: id,
        resource: "tickets".into(),
        page: Some(receipt_notifying(id, n)),
        checkpoint: Some(OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds)),
        fence: Some(fence.clone()),
    };
    let written = store.record_poll(page("n-1", 100, &fence)).await.unwrap();
    assert!(!written.fenced && written.checkpoint_moved && written.receipt_id.is_some());

    // a pauses past its lease; b takes everything over (a higher epoch).
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    let b_held = beat(b.as_ref(), "b").await;
    let now_epoch = b_held
        .iter()
        .find(|p| p.partition == partition)
        .unwrap()
        .epoch;
    assert!(now_epoch > epoch);

    // a wakes up and writes the page it was working on: nothing lands.
    let stale = store.record_poll(page("n-2", 200, &fence)).await.unwrap();
    assert!(stale.fenced);
    assert_eq!((stale.receipt_id, stale.checkpoint_moved), (None, false));
    assert_eq!(
        notifications_of(&store, id).await.len(),
        1,
        "0 rows written"
    );
    let kept = store.poll_checkpoints(id).await.unwrap();
    assert_eq!(
        kept[0].checkpoint.unix_timestamp(),
        100,
        "checkpoint untouched"
    );
    // Renewing finds nothing of a's left either: it holds nothing now.
    assert!(a
        .balance_partitions("a", LEASE, 128)
        .await
        .unwrap()
        .iter()
        .all(|p| p.partition != partition));
    // An expired lease fences too, even with the right owner and epoch.
    let b_fence = Fence {
        partition,
        owner: "b".into(),
        epoch: now_epoch,
    };
    assert!(
        !store
            .record_poll(page("n-3", 300, &b_fence))
            .await
            .unwrap()
            .fenced
    );
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    let expired = store.record_poll(page("n-4", 400, &b_fence)).await.unwrap();
    assert!(expired.fenced);
    assert_eq!(notifications_of(&store, id).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_at_a_time_holds_a_singleton() {
    let url = fresh_database().await;
    let (_a_store, a) = open(&url).await;
    let (_b_store, b) = open(&url).await;
    assert_eq!(
        a.hold_singleton("maintenance", "a", LEASE).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        b.hold_singleton("maintenance", "b", LEASE).await.unwrap(),
        None
    );
    assert_eq!(
        a.hold_singleton("maintenance", "a", LEASE).await.unwrap(),
        Some(1),
        "renewed"
    );
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    assert_eq!(
        b.hold_singleton("maintenance", "b", LEASE).await.unwrap(),
        Some(2),
        "taken over"
    );
    assert_eq!(
        a.hold_singleton("maintenance", "a", LEASE).await.unwrap(),
        None
    );
    // A clean shutdown hands it over at once.
    b.heartbeat("b", OffsetDateTime::now_utc(), LEASE)
        .await
        .unwrap();
    b.release("b").await.unwrap();
    assert_eq!(
        a.hold_singleton("maintenance", "a", LEASE).await.unwrap(),
        Some(1)
    );
    assert!(
        b.replicas(LEASE).await.unwrap().is_empty(),
        "b is forgotten, a never beat"
    );
}
