//! The web console in a real browser: a host with real plugins, a fake
//! ConnectWise and a receiver are started here, and
//! `tests/browser/console.test.mjs` drives headless Chromium through the
//! console against them (sign in, create an instance through the form,
//! watch plugins reload, follow a webhook to its delivery, redeliver, edit
//! an instance, see its vendor subscription, switch its events, rotate its
//! signature key, delete one).
//! This side then checks what the receiver got, signatures included. A
//! second test checks the session rules over plain HTTP, for every kind of
//! request that changes state.
//!
//! Needs Debian's `chromium` and the browser tests' `npm ci`, both done by
//! `tests/browser/setup.sh` (which `tests/run.sh` runs). Screenshots go to
//! a temporary folder, or to `PLUGBOARD_CONSOLE_SCREENSHOTS` when set
//! (`docs` refreshes the README's pictures).

use std::path::PathBuf;
use std::time::Duration;

use plugboard::delivery::{DeliveryConfig, RetrySchedule};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::connectwise::FakeConnectWise;
use crate::support::elements_signature;
use crate::support::host::{HostOptions, TestHost, ORG, USER};
use crate::support::receiver::Receiver;
use crate::support::tls::TestCa;
use crate::support::{plugin_bytes, repo_root};

/// Longest the whole browser run may take.
const BROWSER_DEADLINE: Duration = Duration::from_secs(360);

/// Fast retries, so a dead receiver dead-letters within seconds.
fn fast_delivery() -> DeliveryConfig {
    DeliveryConfig {
        request_timeout: Duration::from_millis(500),
        schedule: RetrySchedule {
            delays: vec![Duration::ZERO, Duration::from_millis(200)],
            jitter: 0.0,
            min_backoff_on_throttle: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(1),
        },
        ..DeliveryConfig::default()
    }
}

/// The browser test's folder, after checking its tools are installed.
fn browser_tests() -> PathBuf {
    let dir = repo_root().join("tests/browser");
    let chromium = std::env::var_os("CHROMIUM").map_or("/usr/bin/chromium".into(), PathBuf::from);
    assert!(
        chromium.exists() && dir.join("node_modules/playwright-core").exists(),
        "the browser tests need chromium and playwright-core: run tests/browser/setup.sh"
    );
    dir
}

/// A loopback URL nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/gone")
}

#[tokio::test(flavor = "multi_thread")]
async fn console_in_headless_chromium() {
    let dir = browser_tests();
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let receiver = Receiver::start().await;
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8, ::1".into()),
        ca_file: Some(ca.ca_file.clone()),
        fetch_ports: vec![cw.addr.port()],
        delivery: Some(fast_delivery()),
        ..HostOptions::default()
    })
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let extra = scratch.path().join("github.wasm");
    std::fs::write(&extra, plugin_bytes("github")).unwrap();
    let shots = std::env::var_os("PLUGBOARD_CONSOLE_SCREENSHOTS")
        .map_or_else(|| scratch.path().join("shots"), |d| repo_root().join(d));
    let rotated_keys = scratch.path().join("rotated-keys.json");

    let run = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(&dir)
        .env("PLUGBOARD_URL", &host.base)
        .env("PLUGBOARD_USER_SECRET", USER)
        .env("PLUGBOARD_ORGANIZATION_SECRET", ORG)
        .env("PLUGBOARD_PLUGIN_DIR", host.plugins.path())
        .env("PLUGBOARD_EXTRA_PLUGIN", &extra)
        .env("CW_SERVER_URL", cw.server_url())
        .env("CW_KEY_URL", cw.key_url())
        .env("CW_SIGNING_KEY", &cw.signing_key)
        .env("RECEIVER_URL", receiver.url())
        .env("DEAD_CALLBACK_URL", dead_url().await)
        .env("SCREENSHOT_DIR", &shots)
        .env("ROTATED_KEYS_FILE", &rotated_keys)
        .env(
            "PROBE_PLUGIN",
            repo_root().join("plugins/dist-test/probe.wasm"),
        )
        .env(
            "PROBE_BROKEN_PLUGIN",
            repo_root().join("plugins/dist-test/probe-broken.wasm"),
        )
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BROWSER_DEADLINE, run)
        .await
        .expect("the browser tests finished in time")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser tests failed: {}", out.status);

    // What the browser did reached the real host: the first webhook was
    // delivered twice (once, then again on the console's Redeliver) with one
    // eventId, signed with the key typed into the create form; then came the
    // test notification; after each key rotation the next one is signed with
    // the new key first and every replaced key after it (the grace period).
    // The sixth is the probe's failed webhook, reprocessed from the inbound
    // log after a fix.
    let got = receiver.received();
    assert_eq!(got.len(), 6, "deliveries to the receiver");
    assert_eq!(got[2].json()["message"]["test"], true);
    assert_eq!(got[5].json()["message"]["events"][0]["objectId"], "5");
    assert_eq!(
        got[0].header("elements-webhook-id"),
        got[1].header("elements-webhook-id")
    );
    let first_key = "callback-secret";
    let keys: Vec<String> =
        serde_json::from_slice(&std::fs::read(&rotated_keys).expect("the rotated keys")).unwrap();
    let (generated, typed) = (keys[0].as_str(), keys[1].as_str());
    let expected: [(&str, Vec<&str>); 5] = [
        ("101", vec![first_key]),
        ("101", vec![first_key]),
        ("test", vec![first_key]),
        ("102", vec![generated, first_key]),
        ("103", vec![typed, generated, first_key]),
    ];
    for (delivery, (object, keys)) in got.iter().zip(expected) {
        assert_eq!(delivery.json()["message"]["events"][0]["objectId"], object);
        let signatures: Vec<String> = keys
            .iter()
            .map(|k| elements_signature(k, &delivery.body))
            .collect();
        assert_eq!(
            delivery.header("elements-webhook-signature"),
            signatures.join(","),
            "signatures of ticket {object}"
        );
    }
    for page in [
        "login",
        "instances",
        "new-instance",
        "instance-created",
        "plugins",
        "events",
        "event",
        "events-redelivered",
        "instance",
        "key-rotated",
        "delete-confirm",
    ] {
        let file = shots.join(format!("console-{page}.png"));
        assert!(file.exists(), "screenshot {} was made", file.display());
    }
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_session_stands_in_for_the_credentials() {
    let host = TestHost::start(HostOptions::default()).await;
    let client = no_redirects();
    let url = |path: &str| format!("{}{path}", host.base);

    let page = client.get(url("/console/events")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/console/login");

    let login = |user: &str, org: &str| {
        client
            .post(url("/console/login"))
            .form(&[("user", user), ("organization", org)])
            .send()
    };
    let refused = login(USER, "wrong").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("set-cookie").is_none());
    let accepted = login(USER, ORG).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let set_cookie = accepted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let page = client
        .get(url("/console/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));

    let call = |method: Method, path: &str| {
        client
            .request(method, url(path))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body("{}")
    };
    let status = |r: reqwest::Response| r.status();
    assert_eq!(
        status(call(Method::GET, "/instances").send().await.unwrap()),
        StatusCode::OK
    );
    // Changing state needs the console header too; with it, the API itself answers (400: no element).
    assert_eq!(
        status(call(Method::POST, "/instances").send().await.unwrap()),
        StatusCode::UNAUTHORIZED
    );
    let with_header = call(Method::POST, "/instances").header("x-plugboard-console", "1");
    assert_eq!(
        status(with_header.send().await.unwrap()),
        StatusCode::BAD_REQUEST
    );
    let cross_site = call(Method::POST, "/instances")
        .header("x-plugboard-console", "1")
        .header("sec-fetch-site", "same-site");
    assert_eq!(
        status(cross_site.send().await.unwrap()),
        StatusCode::UNAUTHORIZED
    );

    // The console's other writes (edit, events switch, key rotation, redelivery,
    // delete) follow the same rule: refused without the header or from another
    // site, and the instance untouched; done with it.
    let id = host
        .create_instance(json!({"element": {"key": "probe"}, "name": "csrf"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let writes = [
        (
            Method::PATCH,
            format!("/instances/{id}"),
            json!({"name": "forged"}),
        ),
        (
            Method::PATCH,
            format!("/instances/{id}"),
            json!({"configuration": {"event.notification.signature.key": "forged"}}),
        ),
        (
            Method::PUT,
            format!("/instances/{id}/events/enabled"),
            json!({"enabled": false}),
        ),
        (
            Method::POST,
            format!("/instances/{id}/events/redeliver"),
            json!({}),
        ),
        (Method::DELETE, format!("/instances/{id}"), json!({})),
    ];
    let send = |method: &Method, path: &str, body: &serde_json::Value, headers: &[(&str, &str)]| {
        let mut req = client
            .request(method.clone(), url(path))
            .header("cookie", &cookie)
            .json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send()
    };
    for (method, path, body) in &writes {
        for headers in [
            &[][..],
            &[
                ("x-plugboard-console", "1"),
                ("sec-fetch-site", "cross-site"),
            ][..],
        ] {
            let answer = send(method, path, body, headers).await.unwrap();
            assert_eq!(
                answer.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {headers:?}"
            );
        }
    }
    let (_, unchanged) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(unchanged["name"], "csrf");
    assert!(unchanged["configuration"]
        .get("event.notification.signature.key")
        .is_none());
    for (method, path, body) in &writes {
        let answer = send(method, path, body, &[("x-plugboard-console", "1")])
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{method} {path}");
    }
    let (gone, _) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(gone, StatusCode::NOT_FOUND);

    let out = client
        .post(url("/console/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        status(call(Method::GET, "/instances").send().await.unwrap()),
        StatusCode::UNAUTHORIZED
    );
}
