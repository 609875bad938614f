//! A good element's latency and the sidecar's memory, with and without a
//! hostile plugin next to it.
//!
//! Starts the real `plugboard` binary (release build, default settings)
//! with the bundled GitHub plugin and the test-only probe plugin, and sends
//! a steady stream of signed GitHub `issues` webhooks (`GOOD_RATE` per
//! second, default 40) through three phases of `PHASE_SECS` each (default
//! 20): **baseline** (good traffic alone), **hostile** (the same, plus
//! `HOSTILE_CONNECTIONS` (default 3) connections sending probe webhooks
//! that cycle through an endless loop, a memory blow-up and a trap, each
//! connection sending its next request as soon as the last is answered but
//! at most every `HOSTILE_PACE_MS` ms, default 100) and **after** (good
//! traffic alone again). It prints the good stream's p50/p99 per phase, the
//! hostile requests' statuses, and the sidecar's resident memory (`VmRSS`)
//! before, at its peak during, and some seconds after the hostile phase.
//! Deliveries go to a loopback receiver answering 200, as in production.
//!
//! Good traffic first warms the sidecar up for `WARM_SECS` (default 20).
//!
//! The three phases run twice in one run, each time on a fresh sidecar:
//! first as a **control run** without attackers, then with them. The
//! control run shows what the good traffic alone does: its memory grows as
//! the database grows (SQLite's page cache fills up to its bound), so the
//! memory a hostile phase leaves behind is the hostile run's resident
//! memory after the phases against the control run's after the same phases.
//!
//! Run: `cargo bench -p plugboard --bench hostile` (after `plugins/build.sh`).
//! `PLUGBOARD_BIN=<path>` runs another build of the binary instead (e.g. an
//! older one, for a before/after comparison). Under `cargo test` it runs a
//! short smoke round of two seconds per phase.

#![allow(missing_docs)]

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use load::receiver::BenchReceiver;
use load::{env_usize, full_run, Options, Report, Shot};
use serde_json::{json, Value};
use sha2::Sha256;

const AUTH: &str = "User bench-user, Organization bench-org";
const SECRET: &str = "bench-github-secret";

/// The sidecar under test; killed on drop.
struct Sidecar {
    child: Child,
    base: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sidecar {
    async fn start() -> Self {
        let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (dir, name) in [("plugins/dist", "github"), ("plugins/dist-test", "probe")] {
            let file = format!("{name}.wasm");
            std::fs::copy(root.join(dir).join(&file), plugins.path().join(&file))
                .expect("run plugins/build.sh first");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let program = std::env::var("PLUGBOARD_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_plugboard").into());
        let child = Command::new(program)
            .arg("serve")
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLUGBOARD_PLUGINS", plugins.path())
            .env("PLUGBOARD_DATA", data.path())
            .env("PLUGBOARD_USER_SECRET", "bench-user")
            .env("PLUGBOARD_ORGANIZATION_SECRET", "bench-org")
            .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let sidecar = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dirs: (plugins, data),
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        while !sidecar
            .api_text("/plugins")
            .await
            .contains("\"key\":\"probe\"")
            || !sidecar
                .api_text("/plugins")
                .await
                .contains("\"key\":\"github\"")
        {
            assert!(
                Instant::now() < deadline,
                "the sidecar did not load its plugins"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sidecar
    }

    async fn api_text(&self, path: &str) -> String {
        let answer = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("authorization", AUTH)
            .send()
            .await;
        match answer {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn create(&self, body: Value) -> i64 {
        let created: Value = reqwest::Client::new()
            .post(format!("{}/instances", self.base))
            .header("authorization", AUTH)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("not created: {created}"))
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// Resident memory in MiB.
    fn rss_mib(&self) -> f64 {
        status_mib(self.child.id(), "VmRSS:")
    }

    /// Resident memory as `total (anonymous, of which in the plugin
    /// instance pool's large reservations, + file-backed)`. Pool slots whose
    /// memory image is mapped from a compiled plugin split off smaller
    /// mappings that this share does not count.
    fn rss_parts(&self) -> String {
        let pid = self.child.id();
        format!(
            "{:.1} MiB ({:.1} anonymous, {:.1} of it in the instance pool's reservations of 1 GiB or more, + {:.1} file-backed)",
            status_mib(pid, "VmRSS:"),
            status_mib(pid, "RssAnon:"),
            pool_mib(pid),
            status_mib(pid, "RssFile:")
        )
    }
}

/// Resident MiB of the mappings of at least 1 GiB: the address space the
/// pooling allocator reserves for plugin instances (memories, tables,
/// stacks), of which only what calls touched and slots keep is resident.
fn pool_mib(pid: u32) -> f64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let kib = |line: &str, field: &str| -> Option<f64> {
        line.strip_prefix(field)?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let (mut size, mut resident) = (0.0, 0.0);
    for line in smaps.lines() {
        if let Some(k) = kib(line, "Size:") {
            size = k;
        } else if let Some(k) = kib(line, "Rss:") {
            if size >= 1024.0 * 1024.0 {
                resident += k;
            }
        }
    }
    resident / 1024.0
}

/// A `kB` field of `/proc/<pid>/status`, in MiB (0 when unreadable).
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn path(element: &str, id: i64) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(id.to_string());
    format!("/events/{element}/{encoded}")
}

/// `n` distinct signed GitHub `issues` deliveries for instance `id`.
fn good_shots(id: i64, n: usize, tag: &str) -> Arc<Vec<Shot>> {
    let shots = (0..n)
        .map(|i| {
            let body = serde_json::to_vec(&json!({
                "action": "opened",
                "issue": {"id": i, "number": i, "title": format!("Found bug {tag}-{i}"),
                          "updated_at": "2024-05-01T12:34:56Z"},
                "repository": {"full_name": "octocat/Hello-World"}
            }))
            .unwrap();
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(&body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            Shot {
                path: path("github", id),
                headers: vec![
                    ("x-github-event".into(), "issues".into()),
                    ("x-github-delivery".into(), format!("{tag}-{i}")),
                    ("x-hub-signature-256".into(), signature),
                ],
                body: Bytes::from(body),
            }
        })
        .collect();
    Arc::new(shots)
}

/// Good traffic at `rate` per second for `secs` (four paced connections).
async fn good_phase(sidecar: &Sidecar, id: i64, rate: usize, secs: u64, tag: &str) -> Report {
    let connections = 4;
    let opts = Options {
        connections,
        duration: Duration::from_secs(secs),
        expect: 200,
        pace: Some(Duration::from_secs_f64(connections as f64 / rate as f64)),
        capture: false,
    };
    let n = rate * secs as usize + connections;
    load::run(sidecar.addr(), good_shots(id, n, tag), opts).await
}

/// Statuses of the hostile requests, by class.
#[derive(Default)]
struct HostileTally {
    sent: AtomicUsize,
    refused: AtomicUsize,
}

/// Connections cycling loop / alloc / trap until `stop` is set.
fn hostile(
    sidecar: &Sidecar,
    id: i64,
    connections: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<HostileTally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let pace = Duration::from_millis(env_usize("HOSTILE_PACE_MS", 100) as u64);
    (0..connections)
        .map(|c| {
            let url = format!("{}{}", sidecar.base, path("probe", id));
            let (stop, tally) = (stop.clone(), tally.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let actions = ["loop", "alloc", "trap"];
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = client
                        .post(&url)
                        .header("x-probe-action", actions[i % actions.len()])
                        .body("{}")
                        .send()
                        .await;
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    if answer.is_ok_and(|a| a.status() == 503) {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                    tokio::time::sleep(pace.saturating_sub(started.elapsed())).await;
                }
            })
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one run of the three phases measured.
struct Run {
    baseline: Report,
    during: Report,
    after: Report,
    sent: usize,
    refused: usize,
    rss_before: f64,
    rss_peak: f64,
    rss_after: f64,
    parts: (String, String),
}

/// Starts a sidecar and runs warm-up, baseline, hostile (with
/// `hostile_connections` attackers; 0 for the control run) and after.
async fn run(hostile_connections: usize, full: bool) -> Run {
    let rate = env_usize("GOOD_RATE", 40);
    let secs = env_usize("PHASE_SECS", if full { 20 } else { 2 }) as u64;
    let settle = Duration::from_secs(if full { 5 } else { 1 });
    let sidecar = Sidecar::start().await;
    let receiver = BenchReceiver::start(200).await;
    let good = sidecar
        .create(
            json!({"element": {"key": "github"}, "name": "good", "configuration": {
            "event.notification.enabled": "true", "event.vendor.type": "webhooks",
            "event.notification.callback.url": receiver.url(),
            "github.webhook.secret": SECRET}}),
        )
        .await;
    let probe = sidecar
        .create(
            json!({"element": {"key": "probe"}, "name": "hostile", "configuration": {
            "event.notification.enabled": "true",
            "event.notification.callback.url": receiver.url()}}),
        )
        .await;

    let warm = env_usize("WARM_SECS", if full { 20 } else { 1 }) as u64;
    good_phase(&sidecar, good, rate, warm, "warm").await;
    tokio::time::sleep(settle).await;
    let rss_before = sidecar.rss_mib();
    let parts_before = sidecar.rss_parts();
    let baseline = good_phase(&sidecar, good, rate, secs, "baseline").await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(HostileTally::default());
    let attackers = hostile(
        &sidecar,
        probe,
        hostile_connections,
        stop.clone(),
        tally.clone(),
    );
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = {
        let (sampling, pid) = (sampling.clone(), sidecar.child.id());
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(status_mib(pid, "VmRSS:"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let during = good_phase(&sidecar, good, rate, secs, "hostile").await;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.await;
    }
    sampling.store(false, Ordering::Relaxed);
    let rss_peak = peak.await.unwrap();

    let after = good_phase(&sidecar, good, rate, secs, "after").await;
    tokio::time::sleep(settle).await;
    assert_eq!(
        baseline.failed + during.failed + after.failed,
        0,
        "every good webhook must be accepted"
    );
    Run {
        baseline,
        during,
        after,
        sent: tally.sent.load(Ordering::Relaxed),
        refused: tally.refused.load(Ordering::Relaxed),
        rss_before,
        rss_peak,
        rss_after: sidecar.rss_mib(),
        parts: (parts_before, sidecar.rss_parts()),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let full = full_run();
        let connections = env_usize("HOSTILE_CONNECTIONS", 3);
        // The same phases without attackers first, on a sidecar of its own:
        // what the good traffic alone does to latency and memory (SQLite's
        // page cache grows with the database).
        let control = run(0, full).await;
        let hostile = run(connections, full).await;
        println!(
            "\nhostile: good GitHub webhooks at {}/s, {} s per phase; {connections} hostile probe \
             connections (loop/alloc/trap, at most one request per {} ms each); the control run \
             has the same phases without them",
            env_usize("GOOD_RATE", 40),
            env_usize("PHASE_SECS", if full { 20 } else { 2 }),
            env_usize("HOSTILE_PACE_MS", 100)
        );
        for (run_name, r) in [("control", &control), ("hostile", &hostile)] {
            for (name, report) in [
                ("baseline", &r.baseline),
                ("hostile", &r.during),
                ("after", &r.after),
            ] {
                println!("{}", report.line(&format!("{run_name} run, good, {name}")));
            }
        }
        let p99 = |r: &Report| ms(r.quantile(0.99));
        println!(
            "p50 hostile/baseline {:.2}x, p99 hostile/baseline {:.2}x (target p99 <= 1.5x); \
             control run: p99 {:.2}x",
            ms(hostile.during.quantile(0.5)) / ms(hostile.baseline.quantile(0.5)),
            p99(&hostile.during) / p99(&hostile.baseline),
            p99(&control.during) / p99(&control.baseline),
        );
        println!(
            "hostile requests: {} sent, {} refused with 503 (breaker open)",
            hostile.sent, hostile.refused
        );
        for (run_name, r) in [("control", &control), ("hostile", &hostile)] {
            println!(
                "RSS, {run_name} run: before {:.1} MiB, peak during {:.1} MiB, after {:.1} MiB \
                 ({:+.1} % of before); before: {}; after: {}",
                r.rss_before,
                r.rss_peak,
                r.rss_after,
                (r.rss_after / r.rss_before - 1.0) * 100.0,
                r.parts.0,
                r.parts.1
            );
        }
        println!(
            "RSS after the hostile phase against the control run's after the same phases: \
             {:+.1} % (target within 10 %)",
            (hostile.rss_after / control.rss_after - 1.0) * 100.0
        );
    });
}
