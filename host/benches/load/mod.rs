//! A small HTTP load generator for the loopback benchmarks: a fixed number
//! of keep-alive connections, each sending requests back to back for a
//! fixed time, with every latency recorded. Its submodules hold the rest
//! of the benchmarks' shared harness (the sidecar process, a receiver,
//! scenarios, and elements called in-process).

#[path = "../../../tests/e2e/support/connectwise.rs"]
pub mod connectwise;
pub mod element;
pub mod receiver;
pub mod scenario;
pub mod sidecar;
#[path = "../../../tests/e2e/support/tls.rs"]
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// A number from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fields `at` of one reading of `/proc/<pid>/stat`, counted from the one
/// after the command's closing parenthesis (0 is the state); 0 for what
/// cannot be read.
fn stat_fields<const N: usize>(pid: &str, at: [usize; N]) -> [f64; N] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    at.map(|i| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    })
}

/// User + system CPU seconds process `pid` (or `self`) has used.
pub fn cpu_seconds(pid: &str) -> f64 {
    let [user, system] = stat_fields(pid, [11, 12]);
    (user + system) / 100.0 // at 100 ticks per second
}

/// Minor page faults process `pid` (or `self`) has taken: pages it touched
/// for the first time, or copied on write.
pub fn minor_faults(pid: &str) -> f64 {
    let [faults] = stat_fields(pid, [7]);
    faults
}

/// Whether this is a full benchmark run (`cargo bench` passes `--bench`);
/// under `cargo test` benchmarks run a short smoke round instead.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// One request to send: path, headers, body.
#[derive(Clone)]
pub struct Shot {
    /// Request path.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

/// What a run measured.
pub struct Report {
    /// Requests answered with the expected status.
    pub ok: usize,
    /// Requests answered otherwise.
    pub failed: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latencies of successful requests, sorted.
    pub latencies: Vec<Duration>,
    /// With `Options::capture`: when each successful answer arrived, and its body.
    pub answers: Vec<(Instant, Bytes)>,
}

/// How a run sends.
#[derive(Clone, Copy)]
pub struct Options {
    /// Keep-alive connections, each sending one request at a time.
    pub connections: usize,
    /// Longest run.
    pub duration: Duration,
    /// The status that counts as success.
    pub expect: u16,
    /// With `Some`, each connection starts a request at most this often.
    pub pace: Option<Duration>,
    /// Keep every successful answer's body and arrival time.
    pub capture: bool,
}

impl Options {
    /// As fast as possible over `connections` connections.
    pub fn flat_out(connections: usize) -> Self {
        Self {
            connections,
            duration: Duration::from_secs(60),
            expect: 200,
            pace: None,
            capture: false,
        }
    }
}

impl Report {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile of latency (0.5 = median).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i]
    }

    /// One line for the bench output.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<28} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} failed, {:.1} s)",
            self.rate(),
            self.quantile(0.5).as_secs_f64() * 1e3,
            self.quantile(0.99).as_secs_f64() * 1e3,
            self.ok,
            self.failed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Sends each of `shots` once (or until the time is up) to `addr`.
pub async fn run(addr: SocketAddr, shots: Arc<Vec<Shot>>, opts: Options) -> Report {
    let Options {
        connections,
        duration,
        expect,
        pace,
        capture,
    } = opts;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (shots, next) = (shots.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let (mut ok, mut failed, mut lat) = (0usize, 0usize, Vec::with_capacity(65536));
            let mut answers = Vec::new();
            let mut next_start = Instant::now();
            while Instant::now() < deadline {
                if let Some(every) = pace {
                    tokio::time::sleep_until(next_start.into()).await;
                    next_start += every;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= shots.len() {
                    break; // every request is distinct: stop when they are used up
                }
                let shot = &shots[i];
                let mut req = hyper::Request::post(&shot.path)
                    .header("host", "127.0.0.1")
                    .header("content-type", "application/json");
                for (k, v) in &shot.headers {
                    req = req.header(k, v);
                }
                let req = req.body(Full::new(shot.body.clone())).unwrap();
                let sent = Instant::now();
                if sender.ready().await.is_err() {
                    failed += 1;
                    break;
                }
                match sender.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let body = resp
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if status == expect {
                            ok += 1;
                            lat.push(sent.elapsed());
                            if capture {
                                answers.push((Instant::now(), body));
                            }
                        } else {
                            failed += 1;
                        }
                    }
                    Err(_) => {
                        failed += 1;
                        break;
                    }
                }
            }
            (ok, failed, lat, answers)
        }));
    }
    let mut report = Report {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        answers: Vec::new(),
    };
    for t in tasks {
        let (ok, failed, lat, answers) = t.await.unwrap();
        report.ok += ok;
        report.failed += failed;
        report.latencies.extend(lat);
        report.answers.extend(answers);
    }
    report.elapsed = start.elapsed();
    report.latencies.sort_unstable();
    report
}

/// A minimal hyper server answering `200 OK` to everything: the ceiling
/// the same generator reaches on this machine.
pub async fn bare_hyper_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tcp.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"OK"),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}
