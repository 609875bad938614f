//! The sidecar's footprint: time from start to ready and resident memory at
//! idle, with the bundled plugins (Rust, JavaScript, Python) loaded.
//!
//! The real binary starts on a fresh data folder (a first start: every
//! plugin is compiled, in a child process) and is then restarted several
//! times on the same folder (a warm compiled-plugin cache). Ready means
//! `/readyz` answers 200; idle memory is the sidecar's own `VmRSS` a few
//! seconds after that, with nothing happening.
//!
//! Run: `cargo bench -p plugboard --bench footprint` (after `plugins/build.sh`).
//! Under `cargo test` it runs one short round with the ConnectWise plugin only.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PLUGINS: [&str; 3] = ["connectwise", "github", "shopify"];

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// One start of the sidecar: how long it took to be ready, and its memory.
struct Start {
    ready: Duration,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn ready(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn start(plugins: &Path, data: &Path, idle: Duration) -> Start {
    let port = free_port();
    let began = Instant::now();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("serve")
        .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLUGBOARD_PLUGINS", plugins)
        .env("PLUGBOARD_DATA", data)
        .env("PLUGBOARD_USER_SECRET", "bench-user")
        .env("PLUGBOARD_ORGANIZATION_SECRET", "bench-org")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while !ready(port) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sidecar exited before it was ready"
        );
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "not ready in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let ready = began.elapsed();
    std::thread::sleep(idle);
    let pid = child.id();
    let measured = Start {
        ready,
        idle_rss_kib: status_kib(pid, "VmRSS:"),
        peak_rss_kib: status_kib(pid, "VmHWM:"),
    };
    // SIGTERM, as an orchestrator stops it, then wait for a clean exit.
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    measured
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let full = full_run();
    let names: &[&str] = if full { &PLUGINS } else { &PLUGINS[..1] };
    let (restarts, idle) = if full {
        (7, Duration::from_secs(5))
    } else {
        (1, Duration::from_millis(200))
    };
    let plugins = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
    for name in names {
        std::fs::copy(
            dist.join(format!("{name}.wasm")),
            plugins.path().join(format!("{name}.wasm")),
        )
        .expect("run plugins/build.sh first");
    }

    let first = start(plugins.path(), data.path(), idle);
    let warm: Vec<Start> = (0..restarts)
        .map(|_| start(plugins.path(), data.path(), idle))
        .collect();

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("\nfootprint: plugins {}", names.join(", "));
    println!(
        "first start (compiles every plugin): ready in {:.2} s, idle RSS {:.1} MiB, peak RSS {:.1} MiB",
        first.ready.as_secs_f64(),
        mib(first.idle_rss_kib),
        mib(first.peak_rss_kib)
    );
    let ready_ms: Vec<f64> = warm.iter().map(|s| s.ready.as_secs_f64() * 1e3).collect();
    let rss: Vec<f64> = warm.iter().map(|s| mib(s.idle_rss_kib)).collect();
    println!(
        "warm start x{restarts}: ready median {:.0} ms (min {:.0}, max {:.0}); idle RSS median {:.1} MiB (max {:.1})",
        median(ready_ms.clone()),
        ready_ms.iter().copied().fold(f64::INFINITY, f64::min),
        ready_ms.iter().copied().fold(0.0, f64::max),
        median(rss.clone()),
        rss.iter().copied().fold(0.0, f64::max),
    );
}
