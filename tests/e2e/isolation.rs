//! The sandbox's isolation for JavaScript and Python elements, with the
//! real runtime and the test-only `probe-js` and `probe-py` components
//! (twins of the Rust `probe`): an endless loop is stopped at its deadline
//! while other calls are served, a memory blow-up is capped, a trap fails
//! its own call only, one instance's calls never see another's data even
//! in warm instances, and 50 hot swaps under load fail no call. A
//! JavaScript element's answer may also be a promise, a thenable or a
//! rejection, as componentize-js's bindings (rewritten by
//! `componentize.mjs`) allow, and requests and answers of any size cross
//! those bindings byte for byte.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use plugboard::registry::Registry;
use plugboard::runtime::{
    CallError, CallLabel, ElementError, ElementPlugin, FetchScope, Header, HttpRequest, Runtime,
    RuntimeConfig, WebhookOutcome,
};
use serde_json::Value;

use crate::support::{plugin_bytes, variant, wait_until, write_atomic};

/// The interpreted probes, by element key (also their file names).
const PROBES: [&str; 2] = ["probe-js", "probe-py"];

/// Compiled components, shared by this file's tests so that each large
/// component is compiled once.
static CACHE: std::sync::LazyLock<tempfile::TempDir> =
    std::sync::LazyLock::new(|| tempfile::tempdir().unwrap());

/// The CPU deadline of a call: generous, since the deadline counts the
/// time a busy machine does not run the call.
const DEADLINE: Duration = Duration::from_secs(3);

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        call_timeout_ms: DEADLINE.as_millis() as u64,
        memory_limit_bytes: 64 << 20,
        cache_dir: Some(CACHE.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// A call of `plugin` doing `action` for `instance` configured with `note`.
async fn call(
    plugin: &ElementPlugin,
    instance: i64,
    note: &str,
    action: &str,
) -> Result<WebhookOutcome, CallError> {
    crate::warm::call(plugin, Some(instance), note, action).await
}

/// The note the previous `remember` call left in the instance of the
/// component that served this one (None in a fresh one).
async fn remember(plugin: &ElementPlugin, instance: i64, note: &str) -> Option<String> {
    match call(plugin, instance, note, "remember").await {
        Ok(WebhookOutcome::Accepted(accepted)) => {
            let raw: Value = serde_json::from_str(accepted.raw.as_deref().unwrap()).unwrap();
            assert_eq!(raw["note"], note, "{raw}");
            raw["previous"].as_str().map(str::to_owned)
        }
        other => panic!("expected an accepted event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interpreted_elements_fail_only_their_own_call() {
    let runtime = runtime();
    for key in PROBES {
        let plugin = runtime.load(&plugin_bytes(key)).await.unwrap();
        assert_eq!(plugin.description().key, key);
        assert!(plugin.description().stateless, "{key}");

        // An endless loop is stopped at the deadline; others are served meanwhile.
        let looping = {
            let plugin = plugin.clone();
            tokio::spawn(async move { call(&plugin, 1, "alpha", "loop").await })
        };
        for _ in 0..10 {
            let served = call(&plugin, 2, "beta", "ok").await;
            assert!(
                matches!(served, Ok(WebhookOutcome::Accepted(_))),
                "{key}: {served:?}"
            );
        }
        match looping.await.unwrap() {
            Err(CallError::Timeout(limit)) => assert_eq!(limit, DEADLINE),
            other => panic!("{key}: expected a timeout, got {other:?}"),
        }

        // A memory blow-up is capped; the next call works.
        match call(&plugin, 1, "alpha", "alloc").await {
            Err(CallError::Memory(limit)) => assert_eq!(limit, 64 << 20, "{key}"),
            other => panic!("{key}: expected the memory cap, got {other:?}"),
        }
        // A trap fails its own call, and its warm instance is not reused.
        remember(&plugin, 1, "alpha").await;
        assert_eq!(
            remember(&plugin, 1, "alpha").await.as_deref(),
            Some("alpha"),
            "{key}"
        );
        let trap = call(&plugin, 1, "alpha", "trap").await;
        assert!(matches!(trap, Err(CallError::Trap(_))), "{key}: {trap:?}");
        assert_eq!(
            remember(&plugin, 1, "alpha").await,
            None,
            "{key}: reused after a trap"
        );

        // Two instances at once: each only ever sees its own data.
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..40 {
            let plugin = plugin.clone();
            let (instance, note) = if n % 2 == 0 {
                (1, "alpha")
            } else {
                (2, "beta")
            };
            calls.spawn(async move { (note, remember(&plugin, instance, note).await) });
        }
        let mut reused = 0;
        while let Some(done) = calls.join_next().await {
            let (note, previous) = done.unwrap();
            if let Some(previous) = previous {
                assert_eq!(previous, note, "{key}: a call saw another instance's data");
                reused += 1;
            }
        }
        assert!(reused > 0, "{key}: no call ran in a warm instance");
    }
}

/// The bindings await a JavaScript element's answer only when it is a
/// promise or another thenable, as `await` would; a plain answer is taken
/// as it is, and a rejection is the element's error. Three rounds, so that
/// later calls run in a warm instance whose job queue earlier ones used.
#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_answer_may_be_a_promise_a_thenable_or_a_rejection() {
    let runtime = runtime();
    let plugin = runtime.load(&plugin_bytes("probe-js")).await.unwrap();
    for round in 0..3 {
        for action in ["promise", "thenable", "ok"] {
            let expected = (action != "ok").then(|| format!("\"{action}\""));
            match call(&plugin, 1, "note", action).await {
                Ok(WebhookOutcome::Accepted(accepted)) => {
                    assert_eq!(accepted.raw, expected, "round {round}, {action}");
                    assert_eq!(accepted.events.len(), 1, "round {round}, {action}");
                }
                other => panic!("round {round}, {action}: {other:?}"),
            }
        }
        match call(&plugin, 1, "note", "reject").await {
            Err(CallError::Element(ElementError::Unsupported(message))) => {
                assert!(message.contains("rejected the call as asked"), "{message}")
            }
            other => panic!("round {round}, reject: {other:?}"),
        }
    }
}

/// The rewritten bindings read and write the component's memory through
/// views they keep between calls, renewed only when an address lies past
/// them. In one warm instance, requests of growing size (up to 1 MiB of
/// body, a 64 KiB header and 16,384 headers, past the memory the earlier
/// calls left) arrive in the element exactly as sent, and its answer, as
/// large, comes back exactly; then a small request again.
#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_element_gets_and_answers_exact_bytes_as_its_memory_grows() {
    // The default memory cap: a megabyte of text takes many times that in
    // the interpreter (decoded, parsed, stringified, encoded).
    let runtime = Runtime::new(RuntimeConfig {
        call_timeout_ms: DEADLINE.as_millis() as u64,
        cache_dir: Some(CACHE.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime.load(&plugin_bytes("probe-js")).await.unwrap();
    let config = vec![("probe.note".to_string(), "growing".to_string())];
    for (round, size) in [16, 4 << 10, 256 << 10, 1 << 20, 100]
        .into_iter()
        .enumerate()
    {
        // Multi-byte characters too, so that lengths in bytes and in
        // characters differ.
        let body = format!("{{\"text\":\"{}\"}}", "é€x".repeat(size / 6));
        let big_header = "v".repeat(size.min(64 << 10));
        // As many headers as 64-byte slices of the body: their list, too,
        // lies past the memory of earlier calls.
        let many = (0..size / 64).map(|n| (format!("x-h{n}"), n.to_string()));
        let headers: Vec<Header> = [
            ("x-probe-action".to_string(), "echo".to_string()),
            ("x-probe-id".to_string(), format!("round-{round}")),
            ("x-large".to_string(), big_header),
            ("x-empty".to_string(), String::new()),
        ]
        .into_iter()
        .chain(many)
        .map(|(name, value)| Header { name, value })
        .collect();
        let request = HttpRequest {
            method: "POST".into(),
            url: format!("/events/probe-js/echo?round={round}"),
            query: format!("round={round}"),
            headers,
            body: body.clone().into_bytes(),
        };
        let label = CallLabel {
            element: "probe-js".into(),
            instance: Some(1),
        };
        let answer = plugin
            .webhook(label, FetchScope::default(), &config, &request)
            .await;
        let Ok(WebhookOutcome::Accepted(accepted)) = answer else {
            panic!("round {round}: {answer:?}");
        };
        let echoed: Value = serde_json::from_str(accepted.raw.as_deref().unwrap()).unwrap();
        let sent: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(echoed["method"], "POST", "round {round}");
        assert_eq!(echoed["url"], request.url, "round {round}");
        assert_eq!(echoed["query"], request.query, "round {round}");
        assert_eq!(echoed["headers"], serde_json::json!(sent), "round {round}");
        assert!(echoed["body"] == body, "round {round}: the body differs");
        assert_eq!(accepted.events[0].object_id, format!("round-{round}"));
        assert_eq!(accepted.events[0].raw, accepted.raw.clone().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_hot_swaps_of_interpreted_elements_under_load_fail_no_call() {
    for key in PROBES {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(format!("{key}.wasm"));
        // Two versions in turn: each is compiled once, then served from the
        // artifact cache, so the swaps are not dominated by compiling.
        let base = plugin_bytes(key);
        let versions = [variant(&base, 1), base.clone()];
        let hashes = versions.clone().map(|v| ElementPlugin::hash_of(&v));
        write_atomic(&target, &base);
        let registry = Registry::new(runtime(), dir.path());
        let _watch = registry.watch().await.unwrap();
        let serving = |hash: String| {
            let registry = registry.clone();
            async move {
                wait_until(
                    &format!("{key} to serve {hash}"),
                    // Generous: a new version of a 12–18 MB component is
                    // compiled, on a machine other tests keep busy.
                    Duration::from_secs(300),
                    || async {
                        registry
                            .get(key)
                            .filter(|p| p.plugin.content_hash() == hash)
                            .map(|_| ())
                    },
                )
                .await
            }
        };
        serving(ElementPlugin::hash_of(&base)).await;

        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for caller in 0..4 {
            let (registry, stop, served) = (registry.clone(), stop.clone(), served.clone());
            callers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let loaded = registry.get(key).expect("the element stays loaded");
                    let note = format!("caller-{caller}");
                    let outcome = call(&loaded.plugin, caller, &note, "remember").await;
                    match outcome {
                        Ok(WebhookOutcome::Accepted(accepted)) => {
                            let raw: Value =
                                serde_json::from_str(accepted.raw.as_deref().unwrap()).unwrap();
                            let previous = raw["previous"].as_str();
                            assert!(
                                previous.is_none() || previous == Some(note.as_str()),
                                "{raw}"
                            );
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("{key}: a call failed during a swap: {other:?}"),
                    }
                }
            }));
        }
        for n in 0..50 {
            write_atomic(&target, &versions[n % 2]);
            serving(hashes[n % 2].clone()).await;
        }
        stop.store(true, Ordering::Relaxed);
        for caller in callers {
            caller.await.expect("no call may fail");
        }
        assert!(
            served.load(Ordering::Relaxed) > 50,
            "{key}: calls kept flowing during the swaps"
        );
    }
}
