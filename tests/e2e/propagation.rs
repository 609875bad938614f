//! Two real `plugboard serve` processes on one PostgreSQL database: a
//! change made through one takes effect on the other within a second
//! (PostgreSQL `LISTEN/NOTIFY`), also after their listening connections
//! were terminated by the database; an event filter changed through one is
//! applied by the other; a callback URL and signature key changed through
//! one are used by the other's next delivery; and a console session opened
//! through one is accepted by the other until a logout through either.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::process::{
    create_instance, probe_instance, probe_webhook as webhook, Binary, Process, AUTH,
};
use crate::support::receiver::Receiver;
use crate::support::{elements_signature, plugin_bytes, wait_until};

/// Where the probe instance delivers: a closed loopback port.
const CALLBACK: &str = "http://127.0.0.1:9/hook";

/// A replica on the database `url` with the probe element.
async fn replica(plugins: &std::path::Path, data: &std::path::Path, url: &str) -> Process {
    let process = Binary::serve(plugins, data)
        .env("PLUGBOARD_DATABASE_URL", url)
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")
        .spawn();
    process.wait_ready().await;
    process
}

/// Two replicas with the probe element on a fresh database of the
/// throwaway cluster.
struct Pair {
    a: Process,
    b: Process,
    url: String,
    _dirs: [tempfile::TempDir; 3],
}

impl Pair {
    async fn start() -> Self {
        let url = tokio::task::spawn_blocking(|| throwaway_postgres::shared().create_database())
            .await
            .unwrap();
        let plugins = tempfile::tempdir().unwrap();
        std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
        let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = replica(plugins.path(), data_a.path(), &url).await;
        let b = replica(plugins.path(), data_b.path(), &url).await;
        Self {
            a,
            b,
            url,
            _dirs: [plugins, data_a, data_b],
        }
    }
}

/// Switches events of `id` on or off through `base`.
async fn switch_events(base: &str, id: i64, enabled: bool) {
    let status = reqwest::Client::new()
        .put(format!("{base}/instances/{id}/events/enabled"))
        .header("authorization", AUTH)
        .json(&json!({ "enabled": enabled }))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "switching events: {status}");
}

/// How long until webhooks to `id` through `base` are answered `wanted`
/// (polled every 20 ms, failing after `bound`).
async fn answered_within(base: &str, id: i64, wanted: StatusCode, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = webhook(base, id).await;
        if got == wanted {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "still {got} instead of {wanted} after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Terminates every listening connection on the database; returns how many.
async fn terminate_listeners(url: &str) -> usize {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query LIKE 'LISTEN %'",
            &[],
        )
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn events_switched_off_on_one_replica_are_refused_by_the_other_within_a_second() {
    plugboard::server::raise_open_file_limit();
    let Pair { a, b, url, _dirs } = Pair::start().await;

    // Created on A, accepted by B (which now has it cached).
    let id = probe_instance(&a.base(), CALLBACK).await;
    assert!(webhook(&b.base(), id).await.is_success());

    switch_events(&a.base(), id, false).await;
    let took = answered_within(&b.base(), id, StatusCode::CONFLICT, Duration::from_secs(1)).await;
    eprintln!("events off on A refused by B after {took:?}");

    // The database drops both listening connections: they come back and
    // changes keep propagating (well before the 60 s cache expiry).
    assert_eq!(terminate_listeners(&url).await, 2);
    crate::support::wait_until(
        "B to notice its listening connection was lost",
        Duration::from_secs(10),
        || async {
            b.log()
                .contains("the listening connection to PostgreSQL")
                .then_some(())
        },
    )
    .await;
    switch_events(&a.base(), id, true).await;
    let took = answered_within(&b.base(), id, StatusCode::OK, Duration::from_secs(3)).await;
    eprintln!("events on again after the reconnect, accepted by B after {took:?}");
    switch_events(&a.base(), id, false).await;
    answered_within(&b.base(), id, StatusCode::CONFLICT, Duration::from_secs(1)).await;
    let metrics = reqwest::get(format!("{}/metrics", b.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("plugboard_listen_connected 1"),
        "{metrics}"
    );
}

/// The event-log status of the notification of one webhook to the probe
/// instance `id`, sent through `send_to` and looked up through `log_at`.
async fn logged_status(send_to: &str, log_at: &str, id: i64) -> String {
    let client = reqwest::Client::new();
    let answer: serde_json::Value = client
        .post(format!(
            "{send_to}{}",
            crate::support::host::webhook_path("probe", id)
        ))
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = answer["eventIds"][0].as_str().unwrap().to_string();
    let entry: serde_json::Value = client
        .get(format!("{log_at}/instances/events/{event_id}"))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    entry["status"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_filter_changed_on_one_replica_is_applied_by_the_other() {
    plugboard::server::raise_open_file_limit();
    let Pair { a, b, _dirs, .. } = Pair::start().await;
    let id = probe_instance(&a.base(), CALLBACK).await;
    // B has the instance cached with no filter: its event is not filtered.
    assert_ne!(logged_status(&b.base(), &a.base(), id).await, "FILTERED");

    let patched = reqwest::Client::new()
        .patch(format!("{}/instances/{id}", a.base()))
        .header("authorization", AUTH)
        .json(&json!({"configuration": {"event.objects": "ticket"}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(patched, StatusCode::OK);
    let start = Instant::now();
    while logged_status(&b.base(), &a.base(), id).await != "FILTERED" {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "B still notifies events the filter set on A leaves out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("filter set on A applied by B after {:?}", start.elapsed());
}

/// Patches the configuration of `id` through `base`.
async fn patch_configuration(base: &str, id: i64, configuration: serde_json::Value) {
    let patched = reqwest::Client::new()
        .patch(format!("{base}/instances/{id}"))
        .header("authorization", AUTH)
        .json(&json!({ "configuration": configuration }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(patched, StatusCode::OK);
}

/// Stops `replica` (SIGTERM) and waits for it to exit.
async fn stop(mut replica: Process) {
    replica.terminate();
    assert!(replica.exited(Duration::from_secs(30)).await.success());
}

/// Waits for the `n`th request to `receiver`; returns it.
async fn nth_delivery(receiver: &Receiver, n: usize) -> crate::support::receiver::Received {
    wait_until("a delivery", Duration::from_secs(10), || async {
        receiver.received().get(n - 1).cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_url_and_key_changed_on_one_replica_are_used_by_the_others_next_delivery() {
    plugboard::server::raise_open_file_limit();
    let Pair { a, b, url, _dirs } = Pair::start().await;
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let id = create_instance(
        &a.base(),
        json!({"element": {"key": "probe"}, "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": first.url(),
            "event.notification.signature.key": "first-key"}}),
    )
    .await;

    // B takes a webhook, so it has the instance cached as created (a
    // cache entry lives a minute unless a change notification ends it).
    assert!(webhook(&b.base(), id).await.is_success());
    let delivered = nth_delivery(&first, 1).await;
    let signed =
        |key: &str, d: &crate::support::receiver::Received| elements_signature(key, &d.body);
    assert_eq!(
        delivered.header("elements-webhook-signature"),
        signed("first-key", &delivered)
    );

    // Changed through A, then A stops: whatever is delivered next is
    // delivered by B, with what B learned of the change.
    patch_configuration(
        &a.base(),
        id,
        json!({"event.notification.callback.url": second.url()}),
    )
    .await;
    stop(a).await;
    assert!(webhook(&b.base(), id).await.is_success());
    let delivered = nth_delivery(&second, 1).await;
    assert_eq!(
        delivered.header("elements-webhook-signature"),
        signed("first-key", &delivered)
    );

    // The same for a key rotation, through A started again.
    let a = replica(_dirs[0].path(), _dirs[1].path(), &url).await;
    patch_configuration(
        &a.base(),
        id,
        json!({"event.notification.signature.key": "second-key"}),
    )
    .await;
    stop(a).await;
    assert!(webhook(&b.base(), id).await.is_success());
    let delivered = nth_delivery(&second, 2).await;
    // Signed with the new key first, and with the replaced one during its
    // grace period.
    assert_eq!(
        delivered.header("elements-webhook-signature"),
        format!(
            "{},{}",
            signed("second-key", &delivered),
            signed("first-key", &delivered)
        )
    );
    assert_eq!(
        first.received().len(),
        1,
        "nothing more went to the old URL"
    );
}

/// Signs in to the console through `base`; returns the session cookie.
async fn console_login(client: &reqwest::Client, base: &str) -> String {
    let answer = client
        .post(format!("{base}/console/login"))
        .form(&[
            ("user", "proc-user-secret-7f3a"),
            ("organization", "proc-org-secret-91c2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let set_cookie = answer.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

/// `GET /instances` through `base` with only the session cookie.
async fn listed_with(client: &reqwest::Client, base: &str, cookie: &str) -> StatusCode {
    client
        .get(format!("{base}/instances"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_session_from_one_replica_works_on_the_other_until_logout_on_either() {
    let Pair { a, b, url, _dirs } = Pair::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    assert_eq!(
        listed_with(&client, &b.base(), "plugboard_console=forged").await,
        StatusCode::UNAUTHORIZED
    );
    let cookie = console_login(&client, &a.base()).await;
    assert_eq!(
        listed_with(&client, &a.base(), &cookie).await,
        StatusCode::OK
    );
    assert_eq!(
        listed_with(&client, &b.base(), &cookie).await,
        StatusCode::OK,
        "a session opened on A is accepted by B"
    );
    let page = client
        .get(format!("{}/console/events", b.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "B serves the console pages");

    // Logging out through B ends the session on A too.
    let out = client
        .post(format!("{}/console/logout", b.base()))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        listed_with(&client, &a.base(), &cookie).await,
        StatusCode::UNAUTHORIZED
    );
    // The database keeps only the token's digest, never the token.
    let token = cookie.split_once('=').unwrap().1.to_string();
    let second = console_login(&client, &a.base()).await;
    let config: tokio_postgres::Config = url.parse().unwrap();
    let (db, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = db
        .query("SELECT digest FROM console_sessions", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the logged-out session is gone");
    let stored: Vec<u8> = rows[0].get(0);
    let second_token = second.split_once('=').unwrap().1;
    use sha2::Digest as _;
    assert_eq!(
        stored,
        sha2::Sha256::digest(second_token.as_bytes()).to_vec()
    );
    assert_ne!(token, second_token);
}
