//! Crash safety of polling with the real binary: killed with SIGKILL
//! after a poll stored its first page and before it read the next, the
//! host reads the same window again on restart; nothing is skipped.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};

use reqwest::Method;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{after, delivered, instance, resource, DEADLINE};
use crate::support::connectwise_rest::{record, ConnectWiseRest, Fault};
use crate::support::receiver::Receiver;
use crate::support::wait_until;

/// The real binary, killed with SIGKILL between fetching a poll's pages.
fn sidecar(port: u16, data: &std::path::Path, plugins: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("serve")
        .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("PLUGBOARD_PLUGINS", plugins)
        .env("PLUGBOARD_DATA", data)
        .env("PLUGBOARD_USER_SECRET", "poll-user")
        .env("PLUGBOARD_ORGANIZATION_SECRET", "poll-org")
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
        .env("PLUGBOARD_POLL_MIN_INTERVAL_SECS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_fetch_and_store_reads_the_window_again() {
    let (cw, receiver) = (ConnectWiseRest::start().await, Receiver::start().await);
    let (data, plugins) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        plugins.path().join("connectwise.wasm"),
        crate::support::plugin_bytes("connectwise"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let auth = "User poll-user, Organization poll-org";
    let api = |method: Method, path: String, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("authorization", auth);
        if let Some(b) = body {
            request = request.json(&b);
        }
        async move {
            let r = request.send().await.ok()?;
            Some((r.status(), r.json::<Value>().await.unwrap_or(Value::Null)))
        }
    };
    let ready = || async {
        wait_until("the sidecar to load connectwise", DEADLINE, || async {
            let (_, plugins) = api(Method::GET, "/plugins".into(), None).await?;
            plugins
                .to_string()
                .contains("\"connectwise\"")
                .then_some(())
        })
        .await
    };

    let mut child = sidecar(port, data.path(), plugins.path());
    ready().await;
    // Page 2 of the first poll is held: page 1 is stored, then the host dies.
    cw.fail_next("tickets", Fault::Hold(2));
    let body = instance(&cw, &receiver, "0.005", json!({"tickets": {"pageSize": 2}}));
    let (_, created) = api(Method::POST, "/instances".into(), Some(body))
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let since = OffsetDateTime::parse(created["updatedDate"].as_str().unwrap(), &Rfc3339).unwrap();
    let t1 = after(since);
    for n in 1..=3 {
        cw.add("tickets", record(n, t1, t1));
    }
    wait_until("the poll to ask for page 2", DEADLINE, || async {
        cw.seen("tickets").iter().any(|s| s.page == 2).then_some(())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let before: Vec<_> = cw.seen("tickets");
    cw.release();

    let mut child = sidecar(port, data.path(), plugins.path());
    ready().await;
    let events = wait_until("every record to be delivered", DEADLINE, || async {
        let events = delivered(&receiver);
        let ids: HashSet<String> = events.iter().map(|e| e.2.clone()).collect();
        (ids.len() == 3).then_some(events)
    })
    .await;
    let ids: HashSet<String> = events.iter().map(|e| e.2.clone()).collect();
    let status = wait_until("the window to close", DEADLINE, || async {
        let (_, s) = api(Method::GET, format!("/instances/{id}/poller"), None).await?;
        let tickets = resource(&s, "tickets").clone();
        tickets["checkpoint"].is_string().then_some(tickets)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        ["1", "2", "3"].iter().all(|n| ids.contains(*n)),
        "{events:?}"
    );
    let held = before.iter().rposition(|s| s.page == 1).unwrap();
    let again = &cw.seen("tickets")[before.len()];
    assert_eq!(again.page, 1);
    assert_eq!(
        again.conditions, before[held].conditions,
        "the same window is read again"
    );
    assert_eq!(status["lastError"], Value::Null, "{status}");
}
