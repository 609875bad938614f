//! Fair shares between elements, with the real binary: a misbehaving
//! element cannot take every plugin slot from a good one, its circuit
//! breaker opens after repeated failures (503 with `Retry-After`, without
//! running the plugin), half-opens after the cool-down and closes on a
//! successful call; and plugin files over the size cap are refused by name
//! before they are read; and long calls take turns in their lanes.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::process::{create_instance, get_json, probe_instance, Binary, Process};
use crate::support::receiver::Receiver;
use crate::support::scrape::{scrape, sum};
use crate::support::{host::webhook_path, plugin_bytes, wait_until};

const GITHUB_SECRET: &str = "fairness-github-secret";

/// A loopback port that accepts connections and never answers: a plugin
/// fetch from it blocks in the host (no CPU, no deadline) until the
/// listener's connections are dropped.
struct Stall {
    port: u16,
    release: tokio::sync::oneshot::Sender<()>,
}

impl Stall {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (release, mut released) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => held.push(accepted.unwrap().0),
                    _ = &mut released => return, // drops every held connection
                }
            }
        });
        Self { port, release }
    }
}

/// The binary with the probe and GitHub elements, four plugin slots (two
/// per element), and a breaker that opens after three failures and cools
/// down for two seconds.
async fn start(plugins: &std::path::Path, data: &std::path::Path, stall: u16) -> Process {
    std::fs::write(plugins.join("probe.wasm"), plugin_bytes("probe")).unwrap();
    std::fs::write(plugins.join("github.wasm"), plugin_bytes("github")).unwrap();
    let process = Binary::serve(plugins, data)
        .env("PLUGBOARD_MAX_CONCURRENT_CALLS", "4")
        .env("PLUGBOARD_BREAKER_FAILURES", "3")
        .env("PLUGBOARD_BREAKER_COOLDOWN_SECS", "2")
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
        .env("PLUGBOARD_PLUGIN_FETCH_PORTS", stall.to_string())
        .spawn();
    both_elements_loaded(&process).await;
    process
}

/// Waits until `process` is ready and has loaded the GitHub and probe elements.
async fn both_elements_loaded(process: &Process) {
    process.wait_ready().await;
    let plugins_url = format!("{}/plugins", process.base());
    wait_until(
        "both elements to load",
        Duration::from_secs(120),
        || async {
            let text = get_json(&plugins_url).await?.to_string();
            (text.contains("\"key\":\"github\"") && text.contains("\"key\":\"probe\""))
                .then_some(())
        },
    )
    .await;
}

async fn github_instance(base: &str, callback: &str) -> i64 {
    let body = json!({"element": {"key": "github"}, "name": "good", "configuration": {
        "event.notification.enabled": "true", "event.vendor.type": "webhooks",
        "event.notification.callback.url": callback,
        "github.webhook.secret": GITHUB_SECRET}});
    create_instance(base, body).await
}

/// A signed GitHub `issues` delivery; answers the status.
async fn github_webhook(base: &str, id: i64, n: u32) -> StatusCode {
    let body = serde_json::to_vec(&json!({
        "action": "opened",
        "issue": {"id": 1000 + n, "number": n, "title": "Found a bug", "updated_at": "2024-05-01T12:34:56Z"},
        "repository": {"full_name": "octocat/Hello-World"}
    }))
    .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    reqwest::Client::new()
        .post(format!("{base}{}", webhook_path("github", id)))
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", format!("delivery-{n}"))
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// A probe webhook doing `action` (empty: accept); answers the response.
async fn probe(base: &str, id: i64, action: &str, query: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{}?{query}", webhook_path("probe", id)))
        .body("{}");
    if !action.is_empty() {
        request = request.header("x-probe-action", action);
    }
    request.send().await.unwrap()
}

async fn breaker_open(metrics: &str) -> f64 {
    let samples = scrape(metrics).await;
    sum(
        &samples,
        "plugboard_plugin_breaker_open",
        &[("element", "probe")],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_element_is_cut_off_without_starving_the_others() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stall = Stall::start().await;
    let process = start(plugins.path(), data.path(), stall.port).await;
    let base = process.base();
    let receiver = Receiver::start().await;
    let hostile = probe_instance(&base, &receiver.url()).await;
    let good = github_instance(&base, &receiver.url()).await;
    assert_eq!(github_webhook(&base, good, 0).await, StatusCode::OK);

    // Four probe calls blocked in a fetch would hold every slot; the probe's
    // budget (half of them) lets two run and queues the others.
    let fetch = format!("url=https%3A%2F%2F127.0.0.1%3A{}%2Fkey", stall.port);
    let blocked: Vec<_> = (0..4)
        .map(|i| {
            let (base, query) = (base.clone(), format!("{fetch}&n={i}"));
            tokio::spawn(async move { probe(&base, hostile, "fetch", &query).await.status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for n in 1..=3 {
        assert_eq!(github_webhook(&base, good, n).await, StatusCode::OK);
    }
    let served_in = started.elapsed();
    assert!(
        blocked.iter().all(|call| !call.is_finished()),
        "the good element was served only after the blocked calls gave up ({served_in:?})"
    );
    assert!(
        served_in < Duration::from_secs(3),
        "the good element waited {served_in:?}"
    );
    stall.release.send(()).unwrap();
    for call in blocked {
        assert_eq!(call.await.unwrap(), StatusCode::BAD_GATEWAY);
    }

    // Three traps open the probe's breaker: its calls are refused at once
    // with 503 and Retry-After, while the good element is served.
    for action in ["trap", "trap", "trap"] {
        assert_eq!(probe(&base, hostile, action, "").await.status(), 500);
    }
    let refused_at = Instant::now();
    let refused = probe(&base, hostile, "", "").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(answer["code"], "plugin_circuit_open", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("'probe'"),
        "{answer}"
    );
    assert!(
        refused_at.elapsed() < Duration::from_secs(1),
        "a refusal is fast"
    );
    assert_eq!(
        probe(&base, hostile, "loop", "").await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a loop is refused without running"
    );
    assert_eq!(github_webhook(&base, good, 4).await, StatusCode::OK);
    let metrics = format!("{base}/metrics");
    let samples = scrape(&metrics).await;
    assert_eq!(breaker_open(&metrics).await, 1.0);
    assert!(
        sum(
            &samples,
            "plugboard_plugin_calls_refused_total",
            &[("element", "probe")]
        ) >= 2.0
    );
    assert_eq!(
        sum(
            &samples,
            "plugboard_plugin_breaker_openings_total",
            &[("element", "probe")]
        ),
        1.0
    );
    assert!(process.log().contains("plugin circuit breaker opened"));

    // After the cool-down one trial runs: a failing trial reopens the
    // breaker, a successful one closes it.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(probe(&base, hostile, "trap", "").await.status(), 500);
    assert_eq!(
        probe(&base, hostile, "", "").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let closed = wait_until("the breaker to close", Duration::from_secs(10), || async {
        let status = probe(&base, hostile, "", "").await.status();
        (status == StatusCode::OK).then_some(())
    });
    closed.await;
    assert_eq!(probe(&base, hostile, "", "").await.status(), StatusCode::OK);
    assert_eq!(breaker_open(&metrics).await, 0.0);
    let log = process.log();
    assert!(log.contains("plugin circuit breaker half-open"), "{log}");
    assert!(log.contains("plugin circuit breaker closed"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_files_over_the_size_cap_are_refused_by_name_unread() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    // Sparse: three MiB of size, no disk.
    let big = std::fs::File::create(plugins.path().join("huge.wasm")).unwrap();
    big.set_len(3 << 20).unwrap();
    let process = Binary::serve(plugins.path(), data.path())
        .env("PLUGBOARD_MAX_PLUGIN_FILE_MB", "1")
        .spawn();
    process.wait_ready().await;
    let url = format!("{}/plugins", process.base());
    let files: Value = wait_until(
        "the plugin folder scan",
        Duration::from_secs(60),
        || async {
            let files = get_json(&url).await?;
            (files.as_array()?.len() == 2).then_some(files)
        },
    )
    .await;
    let huge = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "huge.wasm")
        .unwrap_or_else(|| panic!("huge.wasm not listed: {files}"));
    let error = huge["lastError"].as_str().unwrap_or_default();
    assert!(huge["key"].is_null(), "{huge}");
    for part in [
        "3145728 bytes",
        "larger than max_plugin_file_mb",
        "(1 MiB)",
        "not read",
    ] {
        assert!(error.contains(part), "{part:?} missing from {error:?}");
    }
    let log = process.log();
    let line = log
        .lines()
        .find(|l| l.contains("huge.wasm"))
        .unwrap_or_else(|| panic!("no log line names huge.wasm:\n{log}"));
    assert!(line.contains("max_plugin_file_mb"), "{line}");
    assert!(
        files.to_string().contains("\"key\":\"probe\""),
        "the probe still loads: {files}"
    );
}

/// With one lane for long calls, two endless loops take turns — the second
/// waits, suspended and not charged, until the first has been stopped at
/// its deadline, then runs out its own — while a good element's webhooks
/// are served between them; the waits are counted per element.
#[tokio::test(flavor = "multi_thread")]
async fn long_calls_take_turns_in_their_lanes_while_short_calls_are_served() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    std::fs::write(plugins.path().join("github.wasm"), plugin_bytes("github")).unwrap();
    let deadline = Duration::from_millis(600);
    let process = Binary::serve(plugins.path(), data.path())
        .env("PLUGBOARD_LONG_CALL_LANES", "1")
        .env(
            "PLUGBOARD_CALL_TIMEOUT_MS",
            deadline.as_millis().to_string(),
        )
        .env("PLUGBOARD_BREAKER_FAILURES", "0")
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
        .spawn();
    both_elements_loaded(&process).await;
    let base = process.base();
    let receiver = Receiver::start().await;
    let hostile = probe_instance(&base, &receiver.url()).await;
    let good = github_instance(&base, &receiver.url()).await;
    assert_eq!(github_webhook(&base, good, 0).await, StatusCode::OK);

    let started = Instant::now();
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move {
                let status = probe(&base, hostile, "loop", "").await.status();
                (status, started.elapsed())
            })
        })
        .collect();
    for n in 1..=5 {
        assert_eq!(github_webhook(&base, good, n).await, StatusCode::OK);
    }
    let mut ended = Vec::new();
    for call in loops {
        let (status, after) = call.await.unwrap();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "each loop is stopped at its deadline"
        );
        ended.push(after);
    }
    // Each loop runs its whole deadline in the one lane, one after the
    // other: the later can only end after about two deadlines of CPU (a
    // 20 ms grace runs outside the lane). Running side by side, as they
    // would on two cores without lanes, both end after about one.
    let last = ended.into_iter().max().unwrap();
    assert!(
        last >= deadline * 2 - Duration::from_millis(100),
        "the loops ran side by side: the later ended after {last:?}"
    );
    let samples = scrape(&format!("{base}/metrics")).await;
    assert!(
        sum(
            &samples,
            "plugboard_plugin_long_call_waits_total",
            &[("element", "probe")]
        ) >= 1.0,
        "the second loop waited for the lane"
    );
    assert_eq!(
        sum(
            &samples,
            "plugboard_plugin_long_call_waits_total",
            &[("element", "github")]
        ),
        0.0
    );
}
