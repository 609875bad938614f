//! What an element author sees, with the compiled probe element: a guest
//! panic's message in the call's error, the webhook's 500 and the log; the
//! host's clock and hex helpers answering a Rust guest; `plugboard plugins
//! run` with request, configuration, fixture and expectation files, and
//! with `--poll` reading a ConnectWise poll window from page fixtures.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugboard::runtime::{
    CallError, CallLabel, FetchScope, Header, HttpRequest, Runtime, RuntimeConfig, WebhookOutcome,
};
use serde_json::Value;

use crate::support::process::{probe_instance, Binary};
use crate::support::{plugin_bytes, wait_until};

/// A probe webhook request doing `action`, with `headers`.
fn request(action: &str, headers: &[(&str, String)]) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: format!("/events/probe/{action}"),
        query: String::new(),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: (*name).into(),
                value: value.clone(),
            })
            .collect(),
        body: b"{\"n\":1}".to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_panic_message_is_in_the_call_error() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime.load(&plugin_bytes("probe")).await.unwrap();
    let label = CallLabel {
        element: "probe".into(),
        instance: Some(1),
    };
    let trap = plugin
        .webhook(label, FetchScope::default(), &vec![], &request("trap", &[]))
        .await;
    let Err(CallError::Trap(message)) = trap else {
        panic!("expected a trap, got {trap:?}");
    };
    assert!(
        message.contains("the plugin logged: panic: ") && message.contains("probe trap requested"),
        "{message}"
    );
    // The next call starts afresh: nothing of the panic is carried over.
    let ok = plugin
        .webhook(
            CallLabel::default(),
            FetchScope::default(),
            &vec![],
            &request("bad", &[]),
        )
        .await;
    assert_eq!(
        ok.unwrap_err().to_string(),
        "bad request: probe rejects this"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_panic_reaches_the_webhook_answer_and_the_log() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    let process = Binary::serve(plugins.path(), data.path())
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
        .spawn();
    process.wait_ready().await;
    let base = process.base();
    let id = probe_instance(&base, "http://127.0.0.1:9/unused").await;
    let answer = reqwest::Client::new()
        .post(format!(
            "{base}{}",
            crate::support::host::webhook_path("probe", id)
        ))
        .header("x-probe-action", "trap")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 500);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "plugin_failed", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("probe trap requested"), "{message}");
    wait_until("the panic in the log", Duration::from_secs(10), || async {
        let log = process.log();
        (log.contains("panic: ") && log.contains("probe trap requested")).then_some(())
    })
    .await;
}

/// Now, in Unix seconds, by this machine's clock (the host's too).
fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_guest_reads_the_hosts_clock_and_hex() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime.load(&plugin_bytes("probe")).await.unwrap();
    let call = |headers: Vec<(&'static str, String)>| {
        let plugin = plugin.clone();
        async move {
            plugin
                .webhook(
                    CallLabel::default(),
                    FetchScope::default(),
                    &vec![],
                    &request("clock", &headers),
                )
                .await
        }
    };
    let before = unix_now();
    let outcome = call(vec![("x-probe-timestamp", before.to_string())]).await;
    let Ok(WebhookOutcome::Accepted(accepted)) = outcome else {
        panic!("a fresh timestamp is accepted: {outcome:?}");
    };
    let event = &accepted.events[0];
    let raw: Value = serde_json::from_str(&event.raw).unwrap();
    let millis = raw["unixMillis"].as_i64().unwrap();
    assert!(
        (before * 1000 - 1000..=(unix_now() + 1) * 1000).contains(&millis),
        "{millis} is not now ({before})"
    );
    let date =
        time::OffsetDateTime::parse(&event.date, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(
        (date.unix_timestamp() - before).abs() <= 2,
        "{}",
        event.date
    );
    assert_eq!(raw["rfc3339"], event.date.as_str());
    assert!(event.date.ends_with('Z'), "{}", event.date);
    assert_eq!(raw["bodyHex"], hex::encode(b"{\"n\":1}"));

    let stale = call(vec![("x-probe-timestamp", (before - 600).to_string())]).await;
    let message = stale.unwrap_err().to_string();
    assert!(
        message.starts_with("unauthorized: timestamp is 6") && message.contains("tolerance 300 s"),
        "{message}"
    );
}

/// `plugboard plugins run` on the probe with files written into `dir`:
/// the request, the configuration and `extra` arguments; returns the exit
/// code, stdout as JSON (Null if none) and stderr.
fn run_probe(dir: &std::path::Path, request: &str, extra: &[&str]) -> (i32, Value, String) {
    std::fs::write(dir.join("request.http"), request).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"probe.note": "from a file"}"#).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .current_dir(dir)
        .args(["plugins", "run"])
        .arg(crate::support::repo_root().join("plugins/dist-test/probe.wasm"))
        .args(["--request", "request.http", "--config", "config.json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap(), stdout, stderr)
}

#[test]
fn plugins_run_prints_what_the_host_would_do_and_checks_an_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let request = "POST /events/probe/1\nX-Probe-Id: 42\nx-probe-message-id: m-1\n\
                   content-type: application/json\n\n{\"hello\":\"world\"}";
    let expected = serde_json::json!({
        "outcome": "accepted",
        "messageId": "m-1",
        "events": [{"eventType": "created", "objectType": "probe", "objectId": "42",
                    "date": "", "raw": {"hello": "world"}}],
        "raw": {"hello": "world"},
        "fetched": [],
    });
    std::fs::write(dir.path().join("expected.json"), expected.to_string()).unwrap();
    let (code, printed, stderr) = run_probe(dir.path(), request, &["--expect", "expected.json"]);
    assert_eq!((code, &printed), (0, &expected), "{stderr}");

    let mut wrong = expected.clone();
    wrong["events"][0]["objectId"] = "43".into();
    std::fs::write(dir.path().join("wrong.json"), wrong.to_string()).unwrap();
    let (code, printed, stderr) = run_probe(dir.path(), request, &["--expect", "wrong.json"]);
    assert_eq!((code, &printed), (1, &expected));
    assert!(
        stderr.contains("differs from wrong.json")
            && stderr.contains("/events/0/objectId: expected \"43\", got \"42\""),
        "{stderr}"
    );
}

#[test]
fn plugins_run_shows_a_panic_and_answers_fetches_from_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let (code, printed, stderr) = run_probe(
        dir.path(),
        "POST /events/probe/1\nx-probe-action: trap\n\n{}",
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(printed["outcome"], "error");
    assert_eq!(
        (printed["kind"].as_str(), printed["status"].as_u64()),
        (Some("trap"), Some(500))
    );
    let message = printed["message"].as_str().unwrap();
    assert!(
        message.contains("panic: ") && message.contains("probe trap requested"),
        "{message}"
    );

    std::fs::write(
        dir.path().join("key.http"),
        "200\ncontent-type: text/plain\n\nsigning-key",
    )
    .unwrap();
    let request = "POST /events/probe/fetch?url=https%3A%2F%2Flocalhost%2Fkey\n\n";
    let fixture = ["--fetch", "https://localhost/key=key.http"];
    let (code, printed, stderr) = run_probe(dir.path(), request, &fixture);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(printed["outcome"], "respond", "{printed}");
    assert_eq!(
        (printed["status"].as_u64(), printed["body"].as_str()),
        (Some(200), Some("signing-key"))
    );
    assert_eq!(
        printed["fetched"],
        serde_json::json!(["https://localhost/key"])
    );

    let (_, unanswered, _) = run_probe(dir.path(), request, &[]);
    assert_eq!(unanswered["status"], 502, "{unanswered}");
    assert!(unanswered["body"]
        .as_str()
        .unwrap()
        .contains("no fixture answers https://localhost/key"));

    let (code, _, stderr) = run_probe(dir.path(), "POST events\n\n", &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("request.http") && stderr.contains("must start with '/'"),
        "{stderr}"
    );
}

/// `plugboard plugins run --poll tickets` with the ConnectWise element, the
/// configuration and page fixtures written into `dir`, and `extra`
/// arguments; returns the exit code, stdout as JSON (Null if none) and
/// stderr.
fn run_poll(dir: &std::path::Path, extra: &[&str]) -> (i32, Value, String) {
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({
            "helpdesk.connectwise.server.url": "https://cw.example.com",
            "helpdesk.connectwise.company": "acme",
            "helpdesk.connectwise.public.key": "pub",
            "helpdesk.connectwise.private.key": "priv",
            "helpdesk.connectwise.client.id": "client",
            "event.poller.configuration": {"tickets": {"pageSize": 2}},
        })
        .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .current_dir(dir)
        .args(["plugins", "run"])
        .arg(crate::support::repo_root().join("plugins/dist/connectwise.wasm"))
        .args(["--config", "config.json", "--since", "2026-11-27T09:00:00Z"])
        .args(["--until", "2026-11-27T10:00:00Z"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap(), stdout, stderr)
}

/// The ConnectWise tickets query for page `n` of the window.
fn tickets_page(n: u32) -> String {
    format!(
        "https://cw.example.com/v4_6_release/apis/3.0/service/tickets?conditions=\
         lastUpdated%3E%5B2026-11-27T09%3A00%3A00Z%5D&page={n}&pageSize=2\
         &orderBy=_info%2FlastUpdated%20asc"
    )
}

/// A ConnectWise page answer holding tickets `(id, entered, updated)`.
fn tickets(records: &[(u32, &str, &str)]) -> String {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, entered, updated)| {
            serde_json::json!({"id": id, "_info": {"dateEntered": entered, "lastUpdated": updated}})
        })
        .collect();
    format!(
        "200\ncontent-type: application/json\n\n{}",
        Value::from(records)
    )
}

#[test]
fn plugins_run_reads_a_poll_window_page_by_page_from_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let page = |n: u32, file: &str, text: String| {
        std::fs::write(dir.path().join(file), text).unwrap();
        format!("{}={file}", tickets_page(n))
    };
    let first = page(
        1,
        "page1.http",
        tickets(&[
            (1, "2026-11-27T09:10:00Z", "2026-11-27T09:10:00Z"),
            (2, "2026-11-20T08:00:00Z", "2026-11-27T09:20:00Z"),
        ]),
    );
    let second = page(
        2,
        "page2.http",
        tickets(&[(3, "2026-11-27T09:30:00Z", "2026-11-27T09:30:00Z")]),
    );
    let (code, out, stderr) = run_poll(
        dir.path(),
        &["--poll", "tickets", "--fetch", &first, "--fetch", &second],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out["outcome"], "polled", "{out}");
    assert_eq!(
        out["window"],
        serde_json::json!({"since": "2026-11-27T09:00:00Z", "until": "2026-11-27T10:00:00Z"})
    );
    // A full page asks for the next; the short one ends the window.
    let pages = out["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2, "{out}");
    assert_eq!(pages[0]["request"]["url"], tickets_page(1));
    assert_eq!(pages[0]["request"]["headers"]["clientId"], "client");
    assert_eq!(pages[0]["last"], false);
    assert_eq!(pages[1]["last"], true);
    let events: Vec<(String, String)> = pages
        .iter()
        .flat_map(|p| p["events"].as_array().unwrap().clone())
        .map(|e| {
            (
                e["eventType"].as_str().unwrap().to_owned(),
                e["objectId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [("created", "1"), ("updated", "2"), ("created", "3")];
    assert_eq!(
        events,
        want.map(|(t, id)| (t.to_owned(), id.to_owned())),
        "{out}"
    );
    assert_eq!(
        out["fetched"],
        serde_json::json!([tickets_page(1), tickets_page(2)])
    );

    // The vendor refusing the second page: the first is still shown.
    let refused = page(2, "refused.http", "503\n\nbusy".into());
    let (code, out, _) = run_poll(
        dir.path(),
        &["--poll", "tickets", "--fetch", &first, "--fetch", &refused],
    );
    assert_eq!(code, 0);
    assert_eq!(out["outcome"], "error");
    assert_eq!(out["message"], "vendor answered 503", "{out}");
    assert_eq!(out["pages"].as_array().unwrap().len(), 1);

    // No fixture for a page: named, with the flag that would answer it.
    let (_, out, _) = run_poll(dir.path(), &["--poll", "tickets"]);
    let message = out["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("no fixture answers GET {}", tickets_page(1))),
        "{message}"
    );

    // A resource the configuration does not have.
    let (code, out, stderr) = run_poll(dir.path(), &["--poll", "contacts"]);
    assert_eq!((code, out), (1, Value::Null));
    assert!(
        stderr.contains("no resource \"contacts\" (it has: tickets)"),
        "{stderr}"
    );
}
