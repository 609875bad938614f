//! Warm instances of stateless elements, with the real runtime and the
//! compiled probe element (which declares itself stateless but keeps the
//! previous `/remember` call's note in a global, to make reuse visible):
//! a warm instance serves only the element instance and configuration it
//! was first called with, never survives a failed call, and is not kept at
//! all when the runtime keeps none; and through the host, two instances'
//! webhooks never see each other's data and a configuration change made
//! through the API starts afresh.

use std::time::Duration;

use plugboard::runtime::{
    CallError, CallLabel, ElementPlugin, FetchScope, HttpRequest, Runtime, RuntimeConfig,
    WarmConfig, WebhookOutcome,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::host::{webhook_path, HostOptions, TestHost};
use crate::support::plugin_bytes;
use crate::support::receiver::Receiver;
use crate::support::scrape::{scrape, sum};

async fn probe(config: RuntimeConfig) -> ElementPlugin {
    let runtime = Runtime::new(config).unwrap();
    let plugin = runtime.load(&plugin_bytes("probe")).await.unwrap();
    assert!(plugin.description().stateless);
    plugin
}

/// A call of a probe (Rust, JavaScript or Python) doing `action` for
/// `instance` configured with `note`.
pub(crate) async fn call(
    plugin: &ElementPlugin,
    instance: Option<i64>,
    note: &str,
    action: &str,
) -> Result<WebhookOutcome, CallError> {
    let label = CallLabel {
        element: plugin.description().key.clone(),
        instance,
    };
    let config = vec![("probe.note".to_string(), note.to_string())];
    let request = HttpRequest {
        method: "POST".into(),
        url: format!("/events/probe/{action}"),
        query: String::new(),
        headers: vec![],
        body: b"{}".to_vec(),
    };
    plugin
        .webhook(label, FetchScope::default(), &config, &request)
        .await
}

/// What a `/remember` call saw: the previous call's note in the instance
/// of the component that served it (None in a fresh one), and how many
/// calls that instance served before.
async fn remember(
    plugin: &ElementPlugin,
    instance: Option<i64>,
    note: &str,
) -> (Option<String>, u64) {
    match call(plugin, instance, note, "remember").await {
        Ok(WebhookOutcome::Accepted(accepted)) => {
            let raw: Value = serde_json::from_str(&accepted.events[0].raw).unwrap();
            assert_eq!(raw["note"], note);
            let previous = raw["previous"].as_str().map(str::to_owned);
            (previous, raw["calls"].as_u64().unwrap())
        }
        other => panic!("expected an accepted event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_instance_serves_one_element_instance_and_configuration_only() {
    let plugin = probe(RuntimeConfig::default()).await;
    assert_eq!(remember(&plugin, Some(1), "alpha").await, (None, 0));
    assert_eq!(
        remember(&plugin, Some(2), "beta").await,
        (None, 0),
        "instance 2 got instance 1's"
    );
    // The second call of each instance runs in the instance of its first.
    assert_eq!(
        remember(&plugin, Some(1), "alpha").await,
        (Some("alpha".into()), 1)
    );
    assert_eq!(
        remember(&plugin, Some(2), "beta").await,
        (Some("beta".into()), 1)
    );
    // A changed configuration starts afresh.
    assert_eq!(remember(&plugin, Some(1), "gamma").await, (None, 0));
    // A call for no instance never gets nor leaves a warm instance.
    assert_eq!(remember(&plugin, None, "alpha").await, (None, 0));
    assert_eq!(remember(&plugin, None, "alpha").await, (None, 0));
    assert_eq!(
        remember(&plugin, Some(1), "alpha").await,
        (Some("alpha".into()), 2)
    );

    // Many calls of two instances at once: each only ever sees its own.
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..64 {
        let plugin = plugin.clone();
        let (instance, note) = if n % 2 == 0 {
            (1, "alpha")
        } else {
            (2, "beta")
        };
        calls.spawn(async move { (note, remember(&plugin, Some(instance), note).await) });
    }
    let mut reused = 0;
    while let Some(done) = calls.join_next().await {
        let (note, (previous, served)) = done.unwrap();
        match previous {
            Some(previous) => {
                assert_eq!(previous, note, "a call of one instance saw another's data");
                reused += 1;
            }
            None => assert_eq!(served, 0),
        }
    }
    assert!(
        reused > 0,
        "no call of the concurrent round ran in a warm instance"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_call_drops_its_warm_instance() {
    let plugin = probe(RuntimeConfig {
        call_timeout_ms: 300,
        memory_limit_bytes: 32 << 20,
        ..RuntimeConfig::default()
    })
    .await;
    for (action, failed) in [
        (
            "trap",
            (|e: &CallError| matches!(e, CallError::Trap(_))) as fn(&CallError) -> bool,
        ),
        ("loop", |e| matches!(e, CallError::Timeout(_))),
        ("alloc", |e| matches!(e, CallError::Memory(_))),
    ] {
        remember(&plugin, Some(7), "alpha").await;
        assert!(
            remember(&plugin, Some(7), "alpha").await.0.is_some(),
            "not warm before {action}"
        );
        // The failing call takes the warm instance; it is not kept.
        let error = call(&plugin, Some(7), "alpha", action).await.unwrap_err();
        assert!(failed(&error), "{action}: {error:?}");
        assert_eq!(
            remember(&plugin, Some(7), "alpha").await,
            (None, 0),
            "after {action}"
        );
    }
    // A typed element error is an answer, not a failure: the instance stays warm.
    let bad = call(&plugin, Some(7), "alpha", "bad").await;
    assert!(matches!(bad, Err(CallError::Element(_))), "{bad:?}");
    assert_eq!(
        remember(&plugin, Some(7), "alpha").await.0.as_deref(),
        Some("alpha")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_instances_are_bounded_by_calls_idleness_and_setting() {
    // None kept: every call is fresh.
    let none = probe(RuntimeConfig {
        warm: WarmConfig {
            instances: 0,
            ..WarmConfig::default()
        },
        ..RuntimeConfig::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(remember(&none, Some(1), "alpha").await, (None, 0));
    }
    // Three calls per instance, and a short idle time.
    let bounded = probe(RuntimeConfig {
        warm: WarmConfig {
            instances: 1,
            calls: 3,
            idle: Duration::from_millis(300),
        },
        ..RuntimeConfig::default()
    })
    .await;
    let served: Vec<u64> = {
        let mut served = Vec::new();
        for _ in 0..7 {
            served.push(remember(&bounded, Some(1), "alpha").await.1);
        }
        served
    };
    assert_eq!(
        served,
        [0, 1, 2, 0, 1, 2, 0],
        "a warm instance serves three calls"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        remember(&bounded, Some(1), "alpha").await,
        (None, 0),
        "kept past its idle time"
    );
    // One kept in all: instance 2's takes the place of instance 1's.
    remember(&bounded, Some(1), "alpha").await;
    remember(&bounded, Some(2), "beta").await;
    assert_eq!(remember(&bounded, Some(1), "alpha").await, (None, 0));
}

/// The `/remember` events of a probe instance of `host`, oldest first: each
/// event's own note and the previous note its instance of the component held.
async fn remembered(host: &TestHost, id: i64) -> Vec<(String, Option<String>)> {
    let mut seen = Vec::new();
    for listed in host.events(id).await.iter().rev() {
        let event = host.event(listed["eventId"].as_str().unwrap()).await;
        let raw = &event["notification"]["message"]["raw"];
        let note = raw["note"].as_str().unwrap_or_else(|| panic!("{event}"));
        seen.push((note.to_owned(), raw["previous"].as_str().map(str::to_owned)));
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_host_instances_never_see_each_other_and_a_change_starts_afresh() {
    let receiver = Receiver::start().await;
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ..HostOptions::default()
    })
    .await;
    let mut ids = Vec::new();
    for note in ["alpha", "beta"] {
        let created = host
            .create_instance(json!({"element": {"key": "probe"}, "configuration": {
                "event.notification.enabled": true,
                "event.notification.callback.url": receiver.url(),
                "probe.note": note}}))
            .await;
        ids.push(created["id"].as_i64().unwrap());
    }
    let send = |id: i64, n: usize| {
        let host = &host;
        async move {
            let headers = [
                ("x-probe-action", "remember".to_string()),
                ("x-probe-message-id", format!("{id}-{n}")),
            ];
            let (status, body) = host
                .webhook(&webhook_path("probe", id), &headers, b"{}".to_vec())
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    // Interleaved, one at a time, then both at once.
    for n in 0..6 {
        send(ids[n % 2], n).await;
    }
    futures_util::future::join_all((6..30).map(|n| send(ids[n % 2], n))).await;
    for (id, note) in ids.iter().zip(["alpha", "beta"]) {
        let seen = remembered(&host, *id).await;
        assert_eq!(seen.len(), 15);
        for (own, previous) in &seen {
            assert_eq!(own, note);
            if let Some(previous) = previous {
                assert_eq!(previous, note, "instance {id} saw another instance's data");
            }
        }
        assert!(
            seen.iter().any(|(_, previous)| previous.is_some()),
            "instance {id}: no call ran in a warm instance: {seen:?}"
        );
    }
    // A configuration change through the API: the next call starts afresh.
    let (status, body) = host
        .api(
            Method::PATCH,
            &format!("/instances/{}", ids[0]),
            Some(json!({"configuration": {"probe.note": "gamma"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    send(ids[0], 30).await;
    send(ids[0], 31).await;
    let seen = remembered(&host, ids[0]).await;
    assert_eq!(
        &seen[15..],
        [
            ("gamma".into(), None),
            ("gamma".into(), Some("gamma".into()))
        ],
        "after the change"
    );
    let metrics = scrape(&format!("{}/metrics", host.base)).await;
    let warm = sum(
        &metrics,
        "plugboard_plugin_instances_total",
        &[("element", "probe"), ("instance", "warm")],
    );
    assert!(warm >= 2.0, "warm calls counted: {warm}");
}
