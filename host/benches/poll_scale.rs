//! Polling at scale: thousands of ConnectWise polling instances against a
//! local fake vendor, at a short interval.
//!
//! The host runs in this process through the library (real plugin, real
//! durable store, real outbound client on loopback), on a 2-worker tokio
//! runtime. The fake vendor runs on its own thread (`fake-vendor`) and
//! answers each poll with an empty page, or now and then one changed record,
//! so some polls store events and send notifications (to the same fake).
//! After a warm-up round, the run measures for `POLL_MEASURE_INTERVALS`
//! intervals: scheduling lag (planned → actual start of each poll, from the
//! poller's own samples), polls per second, CPU of the process less the
//! fake vendor's thread (from /proc), and resident memory.
//!
//! Run: `cargo bench -p plugboard --bench poll_scale` (after
//! `plugins/build.sh`). `POLL_INSTANCES` (default 5000),
//! `POLL_INTERVAL_SECS` (default 10) and `POLL_MEASURE_INTERVALS` (default 3)
//! tune it. Under `cargo test` (no `--bench` argument) it runs a short smoke
//! round instead — 100 instances every second for two seconds — and checks
//! that every instance was polled without failures.

#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugboard::config::{GivenCredentials, Settings};
use plugboard::poller::PollerConfig;
use plugboard::server::Server;
use serde_json::json;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of the process, and of its threads named `name`.
fn cpu_seconds(name: &str) -> (f64, f64) {
    let ticks = |stat: &str| {
        let fields: Vec<f64> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
    };
    let process = ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    let mut named = 0.0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            named += ticks(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        }
    }
    (process, named)
}

/// Resident memory of the process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The fake vendor: `GET` answers a ConnectWise page (empty, or every 100th
/// time one record updated just now); `POST` (notifications) answers 200.
fn start_fake_vendor() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let polls = Arc::new(AtomicU64::new(0));
    let counter = polls.clone();
    std::thread::Builder::new()
        .name("fake-vendor".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let get = move || {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        if n % 100 != 99 {
                            return axum::Json(json!([]));
                        }
                        let now = time::OffsetDateTime::now_utc()
                            .replace_nanosecond(0)
                            .unwrap()
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap();
                        axum::Json(json!([{"id": n, "summary": "changed",
                            "_info": {"lastUpdated": now, "dateEntered": now}}]))
                    }
                };
                let app =
                    axum::Router::new().fallback(axum::routing::get(get).post(|| async { "ok" }));
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        })
        .unwrap();
    (addr, polls)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (instances, interval, rounds) = if bench {
        (5000.0, 10.0, 3.0)
    } else {
        (100.0, 1.0, 2.0)
    };
    let instances = env_f64("POLL_INSTANCES", instances) as usize;
    let interval = Duration::from_secs_f64(env_f64("POLL_INTERVAL_SECS", interval));
    let rounds = env_f64("POLL_MEASURE_INTERVALS", rounds);
    let (vendor, polls) = start_fake_vendor();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let plugins = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/connectwise.wasm");
        std::fs::copy(&wasm, plugins.path().join("connectwise.wasm")).expect("run plugins/build.sh first");
        let mut settings = Settings::for_dirs(plugins.path().into(), data.path().into());
        settings.credentials = Some(GivenCredentials { user: "bench".into(), organization: "bench".into() });
        settings.outbound.allow_private = plugboard::outbound::parse_allow_list("127.0.0.0/8").unwrap();
        settings.poller = PollerConfig { min_interval: Duration::ZERO, ..PollerConfig::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(settings, Some(listener)).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.registry().get("connectwise").is_none() {
            assert!(Instant::now() < deadline, "the connectwise plugin did not load");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let created = Instant::now();
        let minutes = interval.as_secs_f64() / 60.0;
        let body = json!({"element": {"key": "connectwise"}, "name": "bench", "configuration": {
            "helpdesk.connectwise.server.url": format!("http://{vendor}"),
            "helpdesk.connectwise.company": "acme",
            "helpdesk.connectwise.public.key": "pub",
            "helpdesk.connectwise.private.key": "priv",
            "event.notification.enabled": true,
            "event.vendor.type": "polling",
            "event.notification.callback.url": format!("http://{vendor}/hook"),
            "event.poller.refresh_interval": minutes.to_string(),
            "event.poller.configuration": {"tickets": {}}}});
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for _ in 0..16 {
            let (client, base, body, next) = (client.clone(), base.clone(), body.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < instances as u64 {
                    let r = client.post(format!("{base}/instances")).header("authorization", "User bench, Organization bench")
                        .json(&body).send().await.unwrap();
                    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let poller = server.poller().clone();
        println!("poll_scale: {instances} instances created in {:.1} s", created.elapsed().as_secs_f64());

        // Warm-up: every instance has had its first (randomly placed) poll.
        tokio::time::sleep(interval + Duration::from_secs(2)).await;
        let _ = poller.stats(true);
        let (cpu0, vendor0) = cpu_seconds("fake-vendor");
        let polls0 = polls.load(Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(interval.mul_f64(rounds)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let (cpu1, vendor1) = cpu_seconds("fake-vendor");
        let stats = poller.stats(true);
        let vendor_polls = polls.load(Ordering::Relaxed) - polls0;
        let mut lags = stats.lags.clone();
        lags.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let host_cpu = (cpu1 - cpu0) - (vendor1 - vendor0);
        println!("poll_scale: {} instances polled every {:.1} s, measured {:.1} s", stats.instances, interval.as_secs_f64(), elapsed);
        println!("  polls started: {} ({:.0}/s), vendor requests: {vendor_polls}, failed resource polls: {}, skipped (still running): {}",
            lags.len(), lags.len() as f64 / elapsed, stats.failures, stats.skipped_busy);
        println!("  scheduling lag: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(quantile(&lags, 0.5)), ms(quantile(&lags, 0.9)), ms(quantile(&lags, 0.99)), ms(quantile(&lags, 1.0)));
        println!("  host CPU: {:.2} cores ({:.0} us per poll); fake vendor: {:.2} cores",
            host_cpu / elapsed, host_cpu * 1e6 / lags.len().max(1) as f64, (vendor1 - vendor0) / elapsed);
        println!("  resident memory (host and fake vendor): {:.0} MiB", rss_mib());
        assert_eq!(stats.failures, 0, "every poll must succeed");
        assert!(lags.len() >= instances, "every instance must have been polled");
        server.shutdown().await.unwrap();
    });
}
