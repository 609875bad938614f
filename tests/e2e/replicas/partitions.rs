//! Polls owned by exactly one replica at a time: instances hashed into
//! partitions leased by the replicas. A killed replica's partitions are
//! taken over within 20 s at a higher epoch, and the fake vendor's poll
//! windows of every instance show no gap, no overlap and no concurrent
//! double poll. A replica frozen past its partition lease writes nothing
//! when it wakes up: its poll page is fenced (0 rows).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::connectwise_rest::{record, ConnectWiseRest, Fault, Seen};
use crate::support::process::{create_instance, get_json};
use crate::support::receiver::Receiver;
use crate::support::replicas::Replicas;
use crate::support::scrape::{scrape, sum};
use crate::support::wait_until;

/// Quick heartbeats and short leases, and polls every 3 s (0.05 min).
const CLUSTER: [(&str, &str); 3] = [
    ("PLUGBOARD_HEARTBEAT_SECS", "1"),
    ("PLUGBOARD_LEASE_SECS", "4"),
    ("PLUGBOARD_POLL_MIN_INTERVAL_SECS", "0"),
];
const EVERY_3_S: &str = "0.05";
/// Polling instances, each with a fake vendor of its own.
const INSTANCES: usize = 6;

/// `GET /replicas` of replica `i`: replica id → partitions it holds.
async fn owners(replicas: &Replicas, i: usize) -> Option<BTreeMap<String, BTreeSet<u64>>> {
    let answer = get_json(&format!("{}/replicas", replicas.base(i))).await?;
    let listed = answer["replicas"].as_array()?;
    Some(
        listed
            .iter()
            .map(|r| {
                let partitions = r["partitions"].as_array().cloned().unwrap_or_default();
                let id = r["id"].as_str().unwrap_or_default().to_string();
                (id, partitions.iter().filter_map(Value::as_u64).collect())
            })
            .collect(),
    )
}

/// Waits until replica `i` sees exactly `alive` holding all 256
/// partitions between them, each at least one.
async fn wait_balanced(
    replicas: &Replicas,
    i: usize,
    alive: &[usize],
) -> BTreeMap<String, BTreeSet<u64>> {
    let ids: BTreeSet<String> = alive.iter().map(|r| Replicas::replica_id(*r)).collect();
    wait_until(
        "the partitions to be spread over the live replicas",
        Duration::from_secs(20),
        || async {
            let owners = owners(replicas, i).await?;
            let holding: BTreeSet<String> = owners
                .iter()
                .filter(|(_, p)| !p.is_empty())
                .map(|(id, _)| id.clone())
                .collect();
            let held: usize = owners.values().map(BTreeSet::len).sum();
            let union: BTreeSet<u64> = owners.values().flatten().copied().collect();
            (holding == ids && held == 256 && union.len() == 256).then_some(owners)
        },
    )
    .await
}

/// Partition → epoch, from the table of partition leases.
async fn epochs(db: &tokio_postgres::Client) -> BTreeMap<i64, i64> {
    db.query("SELECT partition::int8, epoch::int8 FROM partitions", &[])
        .await
        .expect("reading the partition leases")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The checkpoint of instance `id`'s tickets, in the database.
async fn checkpoint(db: &tokio_postgres::Client, id: i64) -> Option<i64> {
    db.query_opt(
        "SELECT checkpoint FROM poll_checkpoints WHERE instance_id = $1 AND resource = 'tickets'",
        &[&id],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

/// How many notifications instance `id` has.
async fn notifications(db: &tokio_postgres::Client, id: i64) -> i64 {
    db.query_one(
        "SELECT count(*) FROM notifications WHERE instance_id = $1",
        &[&id],
    )
    .await
    .unwrap()
    .get(0)
}

/// The window start a poll asked for (`lastUpdated>[…]`).
fn since(seen: &Seen) -> OffsetDateTime {
    let c = seen.conditions.as_deref().unwrap_or_default();
    let inner = c.trim_start_matches("lastUpdated>[").trim_end_matches(']');
    OffsetDateTime::parse(inner, &Rfc3339).unwrap_or_else(|_| panic!("no window in {c:?}"))
}

/// Checks the polls one fake vendor saw, in order: a window starts where
/// the previous poll's window ended (its start, to the second: the
/// vendor's dates are whole seconds), or — when that poll did not finish —
/// where the previous window started; never earlier (overlap) and never
/// later (gap); and the same window is never read twice within a second
/// (two replicas polling the instance at once).
fn check_windows(instance: i64, polls: &[Seen]) {
    let firsts: Vec<&Seen> = polls.iter().filter(|s| s.page == 1).collect();
    for pair in firsts.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        let (s0, s1) = (since(before), since(after));
        let read_at = before.wall.replace_nanosecond(0).unwrap();
        let context = format!(
            "instance {instance}: poll from {s0} read at {} by {}, next from {s1} at {} by {}",
            before.wall, before.peer, after.wall, after.peer
        );
        if s1 == s0 {
            assert!(
                after.at.duration_since(before.at) >= Duration::from_secs(1),
                "concurrent double poll: {context}"
            );
        } else {
            assert!(s1 > s0, "overlap, the window went back: {context}");
            assert!(
                s1 <= read_at,
                "gap, the window starts after the previous read: {context}"
            );
            assert!(
                s1 >= read_at - Duration::from_secs(2),
                "gap, a window between them was never read: {context}"
            );
        }
    }
}

/// A polling ConnectWise instance reading `cw`'s tickets every 3 s.
fn polling_instance(cw: &ConnectWiseRest, receiver: &Receiver) -> Value {
    let mut configuration = cw.credentials();
    configuration.as_object_mut().unwrap().extend(
        json!({
            "event.notification.enabled": "true",
            "event.vendor.type": "polling",
            "event.notification.callback.url": receiver.url(),
            "event.poller.refresh_interval": EVERY_3_S,
            "event.poller.configuration": {"tickets": {}},
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    json!({"element": {"key": "connectwise"}, "name": "polled", "configuration": configuration})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_replicas_partitions_are_taken_over_without_gap_or_double_poll() {
    let receiver = Receiver::start().await;
    let mut replicas = Replicas::start(3, &["connectwise"], &CLUSTER).await;
    let db = replicas.sql().await;
    let before = wait_balanced(&replicas, 0, &[0, 1, 2]).await;
    let mut vendors = Vec::new();
    for _ in 0..INSTANCES {
        let cw = ConnectWiseRest::start().await;
        let id = create_instance(&replicas.base(0), polling_instance(&cw, &receiver)).await;
        vendors.push((id, cw));
    }
    let polled = |n: usize| {
        let vendors = &vendors;
        move || async move {
            vendors
                .iter()
                .all(|(_, cw)| cw.seen("tickets").len() >= n)
                .then_some(())
        }
    };
    wait_until(
        "every instance to be polled twice",
        Duration::from_secs(30),
        polled(2),
    )
    .await;

    let epochs_before = epochs(&db).await;
    let theirs = before[&Replicas::replica_id(1)].clone();
    replicas.kill(1);
    let started = std::time::Instant::now();
    let after = wait_balanced(&replicas, 0, &[0, 2]).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "taken over after {took:?}");
    let epochs_after = epochs(&db).await;
    for p in &theirs {
        assert!(
            after[&Replicas::replica_id(0)].contains(p)
                || after[&Replicas::replica_id(2)].contains(p),
            "partition {p} is held by a live replica"
        );
        assert!(
            epochs_after[&(*p as i64)] > epochs_before[&(*p as i64)],
            "partition {p} taken over at a higher epoch"
        );
    }
    let so_far: Vec<usize> = vendors
        .iter()
        .map(|(_, cw)| cw.seen("tickets").len())
        .collect();
    wait_until(
        "every instance to be polled twice more",
        Duration::from_secs(30),
        || async {
            vendors
                .iter()
                .zip(&so_far)
                .all(|((_, cw), n)| cw.seen("tickets").len() >= n + 2)
                .then_some(())
        },
    )
    .await;
    for (id, cw) in &vendors {
        check_windows(*id, &cw.seen("tickets"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_replica_past_its_partition_lease_writes_no_poll_page() {
    let receiver = Receiver::start().await;
    let replicas = Replicas::start(3, &["connectwise"], &CLUSTER).await;
    let db = replicas.sql().await;
    wait_balanced(&replicas, 0, &[0, 1, 2]).await;
    let cw = ConnectWiseRest::start().await;
    let id = create_instance(&replicas.base(0), polling_instance(&cw, &receiver)).await;
    let c0 = wait_until("a first closed window", Duration::from_secs(30), || {
        checkpoint(&db, id)
    })
    .await;
    // Right after a window closed (the next poll is 3 s away), a ticket
    // updated within the next window; that poll is held by the vendor.
    let c = wait_until(
        "the next window to close",
        Duration::from_secs(30),
        || async { checkpoint(&db, id).await.filter(|c| *c != c0) },
    )
    .await;
    let closed = OffsetDateTime::from_unix_timestamp_nanos(i128::from(c) * 1_000_000).unwrap();
    let updated = closed.replace_nanosecond(0).unwrap() + Duration::from_secs(1);
    cw.add("tickets", record(7, updated, updated));
    while OffsetDateTime::now_utc() <= updated {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = cw.seen("tickets").len();
    cw.fail_next("tickets", Fault::Hold(1));
    let held = wait_until(
        "the next poll to reach the vendor",
        Duration::from_secs(30),
        || async { cw.seen("tickets").get(seen).cloned() },
    )
    .await;
    let owner = replicas
        .replica_of_connection(held.peer)
        .expect("the poll came from a replica");
    let c_held = checkpoint(&db, id).await;

    // Frozen mid-poll past its partition lease: another replica takes the
    // partition, reads the same window and stores the ticket.
    replicas.pause(owner);
    let live: Vec<usize> = (0..3).filter(|i| *i != owner).collect();
    wait_balanced(&replicas, live[0], &live).await;
    let c1 = wait_until(
        "the new owner to close the window",
        Duration::from_secs(30),
        || async { checkpoint(&db, id).await.filter(|c| Some(*c) != c_held) },
    )
    .await;
    let stored = notifications(&db, id).await;
    assert_eq!(stored, 1, "the ticket stored once, by the new owner");

    // It wakes up and gets the held page: the write is refused.
    replicas.resume(owner);
    cw.release();
    let metrics = format!("{}/metrics", replicas.base(owner));
    wait_until(
        "the stale page to be fenced",
        Duration::from_secs(20),
        || async {
            let fenced = sum(
                &scrape(&metrics).await,
                "plugboard_poll_pages_fenced_total",
                &[],
            );
            (fenced >= 1.0).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        notifications(&db, id).await,
        stored,
        "0 rows written by the fenced page"
    );
    let now = checkpoint(&db, id).await.unwrap();
    assert!(now >= c1, "the checkpoint never moved back ({now} < {c1})");
    check_windows(id, &cw.seen("tickets"));
}
