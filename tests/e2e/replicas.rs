//! Three real replicas on one real PostgreSQL database: any replica takes
//! any instance's webhooks; a replica killed mid-run loses nothing that
//! was acknowledged and causes duplicates only for the deliveries it had
//! in flight; a frozen replica's late delivery outcomes write nothing; a
//! database crash and cut connections are survived. Management changes
//! reaching every replica within a second, and poll partitions owned by
//! one replica at a time, are in [`propagation`] and [`partitions`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::support::receiver::{Answer, Receiver};
use crate::support::replicas::Replicas;
use crate::support::round_robin::{deliveries, wait_all_delivered, Load};
use crate::support::wait_until;
mod partitions;
mod propagation;

/// Delivery settings of the tests: a 1 s request deadline (so a claim's
/// lease is 6 s) and quick retries.
const DELIVERY: [(&str, &str); 2] = [
    ("PLUGBOARD_DELIVERY_TIMEOUT_MS", "1000"),
    ("PLUGBOARD_DELIVERY_SCHEDULE", "0,0.2,0.5,1,1,1,1,1,1,1,1,1"),
];

/// Longest wait for every acknowledged event to arrive.
const DRAIN: Duration = Duration::from_secs(90);

/// Notification ids that hold a lease right now, with its token.
async fn leased(db: &tokio_postgres::Client) -> HashMap<String, String> {
    db.query(
        "SELECT notification_id, lease_token FROM delivery_queue \
         WHERE lease_token IS NOT NULL",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_replica_loses_nothing_acknowledged_and_duplicates_only_its_leases() {
    let receiver = Receiver::start().await;
    // A receiver that takes a moment, so every replica has deliveries in flight.
    receiver.always(Answer::Stall(Duration::from_millis(50)));
    let mut replicas = Replicas::start(3, &["connectwise"], &DELIVERY).await;
    let (_, path) = replicas.connectwise_instance(0, &receiver.url()).await;
    let db = replicas.sql().await;

    let load = Load::start(
        replicas.bases(),
        path,
        replicas.connectwise.clone(),
        6,
        "kill",
    );
    load.wait_beyond(
        150,
        Duration::from_secs(60),
        "webhooks acknowledged by the three replicas",
    )
    .await;
    replicas.kill(1);
    // What was leased when replica-2 died. Its leases stay until they run
    // out (6 s after its last claim); the survivors' end within a moment
    // (a 50 ms receiver). Whatever still holds the same token 3 s later
    // was replica-2's, in flight when it died.
    let at_kill = leased(&db).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = leased(&db).await;
    let killed_in_flight: HashSet<String> = at_kill
        .iter()
        .filter(|(id, token)| still.get(*id) == Some(token))
        .map(|(id, _)| id.clone())
        .collect();
    // The killed replica comes back (with new leases) while the load goes on.
    replicas.restart(1).await;
    let before = load.count();
    load.wait_beyond(
        before + 100,
        Duration::from_secs(60),
        "the replicas to take webhooks again",
    )
    .await;
    let acknowledged = load.stop().await;

    let per_replica = acknowledged.per_replica(3);
    assert!(
        per_replica.iter().all(|n| *n > 20),
        "each replica took its share of the webhooks: {per_replica:?}"
    );
    let owed = acknowledged.ids();
    wait_all_delivered(&receiver, &owed, DRAIN).await;
    // Redeliveries of replica-2's leases arrive once those have run out.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let counts = deliveries(&receiver);
    let duplicates: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    for (id, n) in &duplicates {
        assert_eq!(**n, 2, "{id} arrived {n} times");
        assert!(
            killed_in_flight.contains(*id),
            "{id} arrived twice but was not among the killed replica's leases in flight"
        );
    }
    eprintln!(
        "acknowledged {} ({per_replica:?} by replica), killed replica's leases in flight {}, duplicates {}",
        owed.len(),
        killed_in_flight.len(),
        duplicates.len()
    );
    let delivered: i64 = db
        .query_one(
            "SELECT count(*) FROM notifications WHERE status = 'delivered'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        delivered as usize >= owed.len(),
        "{delivered} delivered of {} owed",
        owed.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_replica_past_its_leases_writes_no_delivery_outcome() {
    const N: usize = 12;
    let receiver = Receiver::start().await;
    let mut env = DELIVERY.to_vec();
    env[0] = ("PLUGBOARD_DELIVERY_TIMEOUT_MS", "2000"); // a lease of 7 s
    let replicas = Replicas::start(3, &["connectwise"], &env).await;
    let (_, path) = replicas.connectwise_instance(0, &receiver.url()).await;
    let db = replicas.sql().await;
    let client = reqwest::Client::new();

    // Only replica-1 runs while the webhooks come in, so it claims them all;
    // the receiver holds its requests for 1.5 s.
    replicas.pause(1);
    replicas.pause(2);
    receiver.script((0..N).map(|_| Answer::Stall(Duration::from_millis(1500))));
    let mut owed = HashSet::new();
    for n in 0..N {
        let (status, answer) = replicas
            .send_callback(&client, 0, &path, &format!("frozen-{n}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        owed.insert(answer["eventIds"][0].as_str().unwrap().to_string());
    }
    wait_until(
        "replica-1 to send every notification",
        Duration::from_secs(30),
        || async { (receiver.received().len() >= N).then_some(()) },
    )
    .await;
    // Frozen with every claim in flight; the others take over once the
    // leases run out and deliver each notification (answered 200 now).
    replicas.pause(0);
    replicas.resume(1);
    replicas.resume(2);
    wait_until(
        "the survivors to deliver every notification",
        Duration::from_secs(60),
        || async {
            let counts = deliveries(&receiver);
            owed.iter()
                .all(|id| counts.get(id) == Some(&2))
                .then_some(())
        },
    )
    .await;
    let settled = wait_until(
        "every outcome to be recorded",
        Duration::from_secs(30),
        || async {
            let rows = outcomes(&db).await;
            rows.iter().all(|r| r.1 == "delivered").then_some(rows)
        },
    )
    .await;
    assert_eq!(settled.len(), N);
    for (id, status, attempts, last, recorded) in &settled {
        assert_eq!(
            (status.as_str(), *attempts, *last, *recorded),
            ("delivered", 1, Some(200), 1),
            "{id}: one attempt, the survivor's"
        );
    }

    // replica-1 wakes up and records what it sent before it froze: the
    // lease tokens it holds are no longer the notifications', so nothing
    // it writes takes effect.
    replicas.resume(0);
    let stale = wait_until(
        "replica-1 to report its outcomes as stale",
        Duration::from_secs(30),
        || async {
            let n = stale_outcomes(&replicas.log(0));
            (n >= N).then_some(n)
        },
    )
    .await;
    assert_eq!(stale, N, "{}", replicas.log(0));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        outcomes(&db).await,
        settled,
        "0 rows written by the stale outcomes"
    );
    let metrics = crate::support::scrape::scrape(&format!("{}/metrics", replicas.base(0))).await;
    let counted =
        crate::support::scrape::sum(&metrics, "plugboard_delivery_outcomes_stale_total", &[]);
    assert_eq!(counted as usize, N, "the stale outcomes are counted");
}

/// Per notification: id, status, attempts, last status and how many
/// attempts rows it has.
async fn outcomes(db: &tokio_postgres::Client) -> Vec<(String, String, i64, Option<i64>, i64)> {
    db.query(
        "SELECT n.id, n.status, n.attempts, n.last_status, \
         (SELECT count(*) FROM delivery_attempts a WHERE a.notification_id = n.id) \
         FROM notifications n ORDER BY n.id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// The sum of `stale=` of the "delivery outcomes not recorded" warnings in
/// a replica's log.
fn stale_outcomes(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("delivery outcomes not recorded"))
        .filter_map(|l| {
            let at = l.find("stale=")? + "stale=".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_crash_and_cut_connections_lose_nothing_acknowledged() {
    let receiver = Receiver::start().await;
    let replicas = Replicas::start(3, &["connectwise"], &DELIVERY).await;
    let (_, path) = replicas.connectwise_instance(0, &receiver.url()).await;
    let load = Load::start(
        replicas.bases(),
        path,
        replicas.connectwise.clone(),
        4,
        "crash",
    );
    load.wait_beyond(100, Duration::from_secs(60), "webhooks acknowledged")
        .await;

    // The database server crashes and comes back (only committed data survives).
    let cluster = replicas.cluster.clone();
    tokio::task::spawn_blocking(move || cluster.restart_immediate())
        .await
        .unwrap();
    let before = load.count();
    load.wait_beyond(
        before + 50,
        Duration::from_secs(60),
        "webhooks acknowledged after the restart",
    )
    .await;

    // Every connection of every replica is ended from the server side.
    let db = replicas.sql().await;
    let ended: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        ended >= 3,
        "each replica had connections open, {ended} ended"
    );
    let before = load.count();
    load.wait_beyond(
        before + 50,
        Duration::from_secs(60),
        "webhooks acknowledged after the cut",
    )
    .await;
    let acknowledged = load.stop().await;

    for i in 0..replicas.len() {
        replicas.wait_ready(i).await;
    }
    let owed = acknowledged.ids();
    assert!(owed.len() > 200, "a meaningful load: {}", owed.len());
    wait_all_delivered(&receiver, &owed, DRAIN).await;
}
