//! Delivery throughput and end-to-end latency over loopback.
//!
//! The real `plugboard` binary runs as its own process with a durable store.
//! Phase 1 queues `LOAD_REQUESTS` (default 100000) signed ConnectWise
//! callbacks while the receiver answers 410 (delivery paused), then switches
//! the receiver to 200 and resumes delivery: the drain rate is signed
//! notifications delivered per second to a keep-alive receiver. Phase 2
//! sends webhooks at a steady `LATENCY_RATE` per second (default 1000) for
//! ten seconds and measures, per notification, the time from the webhook's
//! 200 answer to the notification's arrival at the receiver (p50/p99).
//!
//! Every store is measured twice: with the instance's delivery unordered,
//! then ordered per object (`event.notification.ordered`; each callback is
//! about an object of its own, so ordering costs only its bookkeeping).
//! `LOAD_ORDERING=off` or `on` measures one of them.
//!
//! Run: `cargo bench -p plugboard --bench delivery_load` (after `plugins/build.sh`);
//! `LOAD_STORES` (default `sqlite,postgresql`) picks the stores.
//! Under `cargo test` (no `--bench` argument) it runs a short smoke round
//! (2,000 notifications, 100 per second for the latency phase).

#![allow(missing_docs)]

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::sync::Arc;
use std::time::{Duration, Instant};

use load::connectwise::FakeConnectWise;
use load::receiver::BenchReceiver;
use load::scenario::{paused_sidecar, print_statements, shots, statements_reset, stores};
use load::tls::TestCa;
use load::{env_usize, full_run, Options};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let full = full_run();
        let requests = env_usize("LOAD_REQUESTS", if full { 100_000 } else { 2_000 });
        let rate = env_usize("LATENCY_RATE", if full { 1000 } else { 100 });
        let ca = TestCa::new();
        let cw = FakeConnectWise::start(&ca).await;
        let receiver = BenchReceiver::start(410).await;
        println!("\ndelivery_load: {requests} signed notifications queued, then drained to a keep-alive loopback receiver");
        let orderings: Vec<bool> = match std::env::var("LOAD_ORDERING").as_deref() {
            Ok("off") => vec![false],
            Ok("on") => vec![true],
            _ => vec![false, true],
        };
        for (store, database) in stores() {
            for &ordered in &orderings {
                let name = if ordered { format!("{store}, ordered") } else { store.to_string() };
                let url = database.as_ref().map(|db| db.url.as_str());
                let db_cpu = || database.as_ref().map_or(0.0, |db| db.cluster.cpu_seconds());
                let (sidecar, id) = paused_sidecar(&cw, &ca, &receiver, url).await;
                if ordered {
                    let config = serde_json::json!({"configuration": {"event.notification.ordered": true}});
                    sidecar.api(reqwest::Method::PATCH, &format!("/instances/{id}"), Some(config)).await;
                }
                // Phase 1: queue, then drain.
                let queued = load::run(sidecar.addr, Arc::new(shots(&cw, id, requests, "queue")), Options::flat_out(64)).await;
                assert_eq!(queued.failed, 0);
                assert_eq!(queued.ok, requests, "{name}: only {} of {requests} queued in {:.0} s", queued.ok, queued.elapsed.as_secs_f64());
                println!("{name}: queued at {:.0} webhooks/s (delivery paused)", requests as f64 / queued.elapsed.as_secs_f64());
                receiver.answer(200);
                let before = receiver.delivered();
                statements_reset(&database);
                let (cpu_before, db_before) = (sidecar.cpu_seconds(), db_cpu());
                let started = Instant::now();
                sidecar
                    .api(reqwest::Method::PUT, &format!("/instances/{id}/events/enabled"), Some(serde_json::json!({"enabled": true})))
                    .await;
                let target = before + requests;
                while receiver.delivered() < target {
                    assert!(started.elapsed() < Duration::from_secs(600), "delivery stalled at {}", receiver.delivered());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let drain = started.elapsed();
                let (cpu, db) = (sidecar.cpu_seconds() - cpu_before, db_cpu() - db_before);
                print_statements(&database, &format!("{name} drain"));

                // Phase 2: steady ingest, accept-to-arrival latency.
                let connections = 10;
                let pace = Duration::from_secs_f64(connections as f64 / rate as f64);
                let shots = Arc::new(shots(&cw, id, rate * 10, "latency"));
                let steady = load::run(
                    sidecar.addr,
                    shots,
                    Options { connections, duration: Duration::from_secs(10), expect: 200, pace: Some(pace), capture: true },
                )
                .await;
                let mut latencies = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                for (answered, body) in &steady.answers {
                    let answer: serde_json::Value = serde_json::from_slice(body).unwrap();
                    let event_id = answer["eventIds"][0].as_str().unwrap().to_string();
                    let arrived = loop {
                        if let Some(t) = receiver.arrival(&event_id) {
                            break t;
                        }
                        assert!(Instant::now() < deadline, "notification {event_id} never arrived");
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    };
                    latencies.push(arrived.saturating_duration_since(*answered));
                }
                latencies.sort_unstable();
                let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
                println!(
                    "{name}: drain {:.0} deliveries/s ({requests} in {:.2} s; CPU: sidecar {:.2} cores, database {:.2} cores)",
                    requests as f64 / drain.as_secs_f64(),
                    drain.as_secs_f64(),
                    cpu / drain.as_secs_f64(),
                    db / drain.as_secs_f64()
                );
                println!(
                    "{name}: end to end at {rate}/s for 10 s ({} webhooks): accepted -> received p50 {:.2} ms, p99 {:.2} ms",
                    latencies.len(),
                    q(0.5),
                    q(0.99)
                );
            }
        }
    });
}
