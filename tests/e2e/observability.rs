//! Health, readiness and metrics of the real binary: `/readyz` follows the
//! plugin folder and shutdown, and every metric family moves under a
//! scripted scenario (accepted, rejected and failing webhooks, delivered,
//! failed and dead-lettered notifications, a paused delivery, plugin loads);
//! logs written to a pipe carry no colour codes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::host::webhook_path;
use crate::support::process::{probe_instance, Binary, Process, AUTH};
use crate::support::receiver::{Answer, Receiver};
use crate::support::scrape::{scrape, sum};
use crate::support::{plugin_bytes, variant, wait_until, write_atomic};

async fn readyz(process: &Process) -> (StatusCode, Value) {
    let r = reqwest::get(format!("{}/readyz", process.base()))
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_follows_the_plugin_folder_and_shutdown() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut process = Binary::serve(plugins.path(), data.path()).spawn();
    let (status, report) = wait_until("/readyz to answer", Duration::from_secs(30), || async {
        let r = reqwest::get(format!("{}/readyz", process.base()))
            .await
            .ok()?;
        Some((r.status(), r.json::<Value>().await.ok()?))
    })
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["ready"], false);
    // It may still be starting; once the folder is scanned, only the
    // missing plugin keeps it unready.
    let report = wait_until(
        "the plugin folder scan",
        Duration::from_secs(30),
        || async {
            let (_, r) = readyz(&process).await;
            (r["checks"]["plugins"] != "scanning the plugin folder").then_some(r)
        },
    )
    .await;
    assert_eq!(report["checks"]["store"], "ok", "{report}");
    let plugins_check = report["checks"]["plugins"].as_str().unwrap();
    assert!(
        plugins_check.contains("no element plugin is loaded"),
        "{report}"
    );
    assert_eq!(
        reqwest::get(format!("{}/healthz", process.base()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "alive while not ready"
    );

    write_atomic(&plugins.path().join("probe.wasm"), &plugin_bytes("probe"));
    process.wait_ready().await;
    let (status, report) = readyz(&process).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["checks"]["plugins"], "ok");

    process.terminate();
    assert!(process.exited(Duration::from_secs(30)).await.success());
    assert!(process.log().contains("stopped"), "{}", process.log());
}

/// Creates a ConnectWise polling instance whose vendor cannot be reached,
/// so that every poll run fails; returns its id.
async fn polling_instance(client: &reqwest::Client, base: &str) -> i64 {
    let created: Value = client
        .post(format!("{base}/instances"))
        .header("authorization", AUTH)
        .json(
            &json!({"element": {"key": "connectwise"}, "configuration": {
            "helpdesk.connectwise.server.url": "https://127.0.0.1:9",
            "helpdesk.connectwise.company": "acme",
            "helpdesk.connectwise.public.key": "public",
            "helpdesk.connectwise.private.key": "private",
            "helpdesk.connectwise.client.id": "client",
            "event.notification.enabled": true,
            "event.vendor.type": "polling",
            "event.notification.callback.url": "http://127.0.0.1:9/unused",
            "event.poller.refresh_interval": "60",
            "event.poller.configuration": {"tickets": {
                "url": "https://127.0.0.1:9/v4_6_release/apis/3.0/service/tickets",
                "idField": "id"}}}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("polling instance: {created}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_family_moves_under_a_scripted_scenario() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for name in ["probe", "connectwise"] {
        let path = plugins.path().join(format!("{name}.wasm"));
        std::fs::write(path, plugin_bytes(name)).unwrap();
    }
    let process = Binary::serve(plugins.path(), data.path())
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
        .env("PLUGBOARD_DELIVERY_SCHEDULE", "0,0.2")
        .env("PLUGBOARD_CALL_TIMEOUT_MS", "200")
        .env("PLUGBOARD_MEMORY_LIMIT_MB", "16")
        .spawn();
    process.wait_ready().await;
    let (base, client) = (process.base(), reqwest::Client::new());
    let metrics = format!("{base}/metrics");
    let response = client.get(&metrics).send().await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));

    let (ok, failing, gone) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    failing.always(Answer::Status(500, None));
    gone.always(Answer::Status(410, None));
    let delivered = probe_instance(&base, &ok.url()).await;
    let dead = probe_instance(&base, &failing.url()).await;
    let paused = probe_instance(&base, &gone.url()).await;

    let webhook = |id: i64, action: &'static str| {
        let (client, url) = (
            client.clone(),
            format!("{base}{}", webhook_path("probe", id)),
        );
        async move {
            let mut request = client.post(url).body("{}");
            if !action.is_empty() {
                request = request.header("x-probe-action", action);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    for id in [delivered, dead, paused] {
        assert_eq!(webhook(id, "").await, 200);
    }
    assert_eq!(webhook(delivered, "unauthorized").await, 401);
    assert_eq!(webhook(delivered, "trap").await, 500);
    assert_eq!(webhook(delivered, "loop").await, 503);
    assert_eq!(webhook(delivered, "alloc").await, 500);
    let unknown = client
        .post(format!("{base}/events/nosuch/MQ=="))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let polled = polling_instance(&client, &base).await;
    let poll = client
        .post(format!("{base}/instances/{polled}/poller"))
        .header("authorization", AUTH);
    assert_eq!(poll.send().await.unwrap().status(), 200);

    std::fs::write(plugins.path().join("broken.wasm"), b"not a component").unwrap();
    write_atomic(
        &plugins.path().join("probe.wasm"),
        &variant(&plugin_bytes("probe"), 1),
    );

    let samples = wait_until("every family to move", Duration::from_secs(30), || async {
        let s = scrape(&metrics).await;
        let moved = sum(
            &s,
            "plugboard_deliveries_total",
            &[("outcome", "dead_lettered")],
        ) >= 1.0
            && sum(
                &s,
                "plugboard_deliveries_total",
                &[("outcome", "delivered")],
            ) >= 1.0
            && sum(&s, "plugboard_outbox_pending", &[]) >= 1.0
            && sum(&s, "plugboard_outbox_dead", &[]) >= 1.0
            && sum(&s, "plugboard_plugin_loads_total", &[("outcome", "failed")]) >= 1.0
            && sum(&s, "plugboard_plugin_loads_total", &[("outcome", "loaded")]) >= 3.0
            && sum(
                &s,
                "plugboard_poll_errors_total",
                &[("element", "connectwise")],
            ) >= 1.0;
        moved.then_some(s)
    })
    .await;
    let probe = [("element", "probe")];
    assert_eq!(
        sum(&samples, "plugboard_webhooks_received_total", &probe),
        7.0
    );
    assert_eq!(
        sum(
            &samples,
            "plugboard_webhooks_received_total",
            &[("element", "unknown")]
        ),
        1.0
    );
    for (status, n) in [("401", 1.0), ("500", 2.0), ("503", 1.0)] {
        let labels = [("element", "probe"), ("status", status)];
        assert_eq!(
            sum(&samples, "plugboard_webhooks_rejected_total", &labels),
            n,
            "{status}"
        );
    }
    let calls = [("element", "probe"), ("call", "webhook")];
    assert_eq!(
        sum(
            &samples,
            "plugboard_plugin_call_duration_seconds_count",
            &calls
        ),
        7.0
    );
    assert!(
        sum(
            &samples,
            "plugboard_plugin_call_duration_seconds_sum",
            &calls
        ) > 0.0
    );
    for kind in ["trap", "timeout", "memory"] {
        let labels = [("element", "probe"), ("kind", kind)];
        assert_eq!(
            sum(&samples, "plugboard_plugin_errors_total", &labels),
            1.0,
            "{kind}"
        );
    }
    assert!(
        sum(
            &samples,
            "plugboard_deliveries_total",
            &[("outcome", "failed")]
        ) >= 2.0
    );
    assert!(sum(&samples, "plugboard_delivery_duration_seconds_count", &[]) >= 4.0);
    assert_eq!(sum(&samples, "plugboard_plugins_loaded", &[]), 2.0);
    let cw = [("element", "connectwise")];
    assert!(sum(&samples, "plugboard_poll_runs_total", &cw) >= 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listen_moves_metrics_off_the_main_address() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    let metrics_port = crate::support::process::free_port();
    let process = Binary::serve(plugins.path(), data.path())
        .env(
            "PLUGBOARD_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .spawn();
    process.wait_ready().await;
    let get = |url: String| async move { reqwest::get(url).await.unwrap().status() };
    assert_eq!(get(format!("{}/metrics", process.base())).await, 404);
    let side = format!("http://127.0.0.1:{metrics_port}");
    for path in ["/metrics", "/readyz", "/healthz"] {
        assert_eq!(get(format!("{side}{path}")).await, 200, "{path}");
    }
    assert_eq!(
        get(format!("{side}/instances")).await,
        404,
        "nothing else there"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_on_a_pipe_carry_no_colour_codes() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    let process = Binary::serve(plugins.path(), data.path()).spawn_piped();
    process.wait_ready().await;
    let log = wait_until("the start to be logged", Duration::from_secs(10), || {
        let log = process.log();
        std::future::ready(log.contains("plugboard listening").then_some(log))
    })
    .await;
    assert!(log.contains(" INFO "), "{log}");
    assert!(
        !log.contains('\x1b'),
        "escape sequences in a log on a pipe: {log:?}"
    );
}
