//! Ingest and delivery with 1, 2 and 3 replicas on one PostgreSQL.
//!
//! For each replica count, a fresh database of one throwaway PostgreSQL
//! cluster (default durability) and that many real `plugboard` processes
//! sharing it, each with its own replica id and data folder. One
//! ConnectWise instance is created on the first replica and its delivery
//! paused (the receiver answers 410). Phase 1 sends `LOAD_REQUESTS`
//! (default 60000) distinct signed callbacks spread round-robin over the
//! replicas (`LOAD_CONNECTIONS`, default 64, split between them): the
//! ingest rate. Phase 2 switches the receiver to 200 and events back on: every
//! replica claims from the shared outbox, and the drain rate is
//! notifications delivered per second. Each phase prints the CPU every
//! replica and the database server used, side by side: on this machine
//! they share the same cores, so the figures say where the CPU goes, and
//! how far separate machines would scale, rather than showing the scaling
//! itself.
//!
//! Run: `cargo bench -p plugboard --bench replicas_load` (after
//! `plugins/build.sh`), on a quiet machine. Under `cargo test` (no `--bench`
//! argument) it runs a short smoke round of 1,500 requests per replica count.

#![allow(missing_docs)]

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::sync::Arc;
use std::time::{Duration, Instant};

use load::connectwise::FakeConnectWise;
use load::receiver::BenchReceiver;
use load::scenario::shots;
use load::sidecar::Sidecar;
use load::tls::TestCa;
use load::{env_usize, full_run, Options, Report};

/// CPU seconds used so far by each replica, and by the database server.
fn cpu(replicas: &[Sidecar], cluster: &throwaway_postgres::Cluster) -> (Vec<f64>, f64) {
    (
        replicas.iter().map(Sidecar::cpu_seconds).collect(),
        cluster.cpu_seconds(),
    )
}

/// `replica-1 0.62, replica-2 0.60 | database 0.41` (cores over `secs`).
fn cores(before: &(Vec<f64>, f64), after: &(Vec<f64>, f64), secs: f64) -> String {
    let replicas: Vec<String> = after
        .0
        .iter()
        .zip(&before.0)
        .enumerate()
        .map(|(i, (a, b))| format!("replica-{} {:.2}", i + 1, (a - b) / secs))
        .collect();
    let total: f64 = after.0.iter().sum::<f64>() - before.0.iter().sum::<f64>();
    format!(
        "{} (sum {:.2}) | database {:.2}",
        replicas.join(", "),
        total / secs,
        (after.1 - before.1) / secs
    )
}

/// Starts `n` replicas on `database_url` and creates the instance on the
/// first, its delivery paused; every replica has verified a callback
/// (signing key fetched, plugin compiled). Returns them, the instance id
/// and how many warm-up notifications wait in the outbox.
async fn paused_replicas(
    n: usize,
    database_url: &str,
    cw: &FakeConnectWise,
    ca: &TestCa,
    receiver: &BenchReceiver,
) -> (Vec<Sidecar>, i64, usize) {
    let mut replicas = Vec::new();
    for i in 0..n {
        let env = [
            ("PLUGBOARD_DATABASE_URL", database_url.to_string()),
            ("PLUGBOARD_REPLICA_ID", format!("replica-{}", i + 1)),
            (
                "PLUGBOARD_OUTBOUND_CA_FILE",
                ca.ca_file.display().to_string(),
            ),
            ("PLUGBOARD_PLUGIN_FETCH_PORTS", cw.addr.port().to_string()),
        ];
        replicas.push(Sidecar::start(&env).await);
    }
    let id = replicas[0]
        .connectwise_instance(&cw.server_url(), &receiver.url())
        .await;
    receiver.answer(410);
    let mut warm = 0;
    for (i, replica) in replicas.iter().enumerate() {
        let batch = shots(cw, id, 100, &format!("warm-{i}"));
        warm += batch.len();
        let sent = load::run(replica.addr, Arc::new(batch), Options::flat_out(4)).await;
        assert_eq!(sent.failed, 0, "warm-up of replica-{}", i + 1);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while replicas[0]
        .api(reqwest::Method::GET, &format!("/instances/{id}"), None)
        .await["deliveryPaused"]
        .is_null()
    {
        assert!(Instant::now() < deadline, "delivery did not pause");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (replicas, id, warm)
}

/// Sends `requests` callbacks, round-robin over the replicas, with
/// `connections` split between them; the combined report.
async fn ingest(
    replicas: &[Sidecar],
    cw: &FakeConnectWise,
    id: i64,
    requests: usize,
    connections: usize,
) -> Report {
    let all = shots(cw, id, requests, "bench");
    let n = replicas.len();
    let runs = replicas.iter().enumerate().map(|(i, replica)| {
        let mine: Vec<_> = all.iter().skip(i).step_by(n).cloned().collect();
        load::run(
            replica.addr,
            Arc::new(mine),
            Options::flat_out((connections / n).max(1)),
        )
    });
    let reports = futures_util::future::join_all(runs).await;
    let mut total = Report {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        answers: Vec::new(),
    };
    for r in reports {
        total.ok += r.ok;
        total.failed += r.failed;
        total.elapsed = total.elapsed.max(r.elapsed);
        total.latencies.extend(r.latencies);
    }
    total.latencies.sort_unstable();
    total
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let full = full_run();
        let requests = env_usize("LOAD_REQUESTS", if full { 60_000 } else { 1_500 });
        let connections = env_usize("LOAD_CONNECTIONS", 64);
        let cluster = throwaway_postgres::shared();
        let ca = TestCa::new();
        let cw = FakeConnectWise::start(&ca).await;
        let receiver = BenchReceiver::start(410).await;
        println!("\nreplicas_load: {requests} signed callbacks round-robin over 1, 2 and 3 replicas on one PostgreSQL ({connections} connections); CPU in cores");
        for n in 1..=3 {
            let (replicas, id, warm) = paused_replicas(n, &cluster.create_database(), &cw, &ca, &receiver).await;
            let before = cpu(&replicas, cluster);
            let report = ingest(&replicas, &cw, id, requests, connections).await;
            let after = cpu(&replicas, cluster);
            assert_eq!(report.failed, 0, "every webhook must be accepted ({n} replicas)");
            println!("{}", report.line(&format!("{n} replica(s): ingest")));
            println!("  CPU: {}", cores(&before, &after, report.elapsed.as_secs_f64()));

            receiver.answer(200);
            let target = receiver.delivered() + requests + warm;
            let before = cpu(&replicas, cluster);
            let started = Instant::now();
            replicas[0]
                .api(reqwest::Method::PUT, &format!("/instances/{id}/events/enabled"), Some(serde_json::json!({"enabled": true})))
                .await;
            while receiver.delivered() < target {
                assert!(started.elapsed() < Duration::from_secs(600), "delivery stalled at {}", receiver.delivered());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let drain = started.elapsed().as_secs_f64();
            let after = cpu(&replicas, cluster);
            println!(
                "{:<28} {:>9.0} deliveries/s ({} in {:.2} s)",
                format!("{n} replica(s): drain"),
                (requests + warm) as f64 / drain,
                requests + warm,
                drain
            );
            println!("  CPU: {}", cores(&before, &after, drain));
            receiver.answer(410);
        }
    });
}
