//! The plugin runtime and hot reload, with real compiled plugins: loading,
//! calling, swapping under load, broken replacements, deletion, and the
//! sandbox limits (deadline, memory cap, trap isolation, contract checks).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use plugboard::registry::Registry;
use plugboard::runtime::{
    CallError, CallLabel, EventType, FetchScope, HttpRequest, LoadError, Runtime, RuntimeConfig,
    WebhookOutcome,
};

use crate::support::{plugin_bytes, variant, wait_until, write_atomic};

fn runtime(timeout_ms: u64, memory_mb: usize) -> Runtime {
    Runtime::new(RuntimeConfig {
        call_timeout_ms: timeout_ms,
        memory_limit_bytes: memory_mb << 20,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn probe_request(path: &str) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: format!("/events/probe/{path}"),
        query: String::new(),
        headers: vec![],
        body: br#"{"hello":"world"}"#.to_vec(),
    }
}

async fn call_probe(
    plugin: &plugboard::runtime::ElementPlugin,
    path: &str,
) -> Result<WebhookOutcome, CallError> {
    plugin
        .webhook(
            CallLabel::default(),
            FetchScope::default(),
            &vec![],
            &probe_request(path),
        )
        .await
}

fn connectwise_callback() -> Vec<u8> {
    let entity = serde_json::json!({
        "id": 4711, "summary": "Printer on fire", "board": {"id": 1, "name": "Service"},
        "status": {"id": 16, "name": "New"}, "company": {"id": 250, "identifier": "ACME"},
        "_info": {"lastUpdated": "2024-05-01T12:34:56Z", "dateEntered": "2024-05-01T12:00:00Z"}
    });
    serde_json::to_vec(&serde_json::json!({
        "MessageId": "5f1a2b3c-0000-4000-8000-000000000001", "FromUrl": "https://api-na.myconnectwise.net",
        "CompanyId": "acme", "MemberId": "jdoe", "Action": "updated", "Type": "ticket", "ID": 4711,
        "ProductInstanceId": null, "PartnerId": null, "CallbackObjectRecId": 12,
        "Entity": entity.to_string(),
        "Metadata": {"key_url": "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=1"}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn loads_and_calls_the_connectwise_plugin() {
    let rt = runtime(1000, 64);
    let plugin = rt.load(&plugin_bytes("connectwise")).await.unwrap();
    let d = plugin.description();
    assert_eq!(d.key, "connectwise");
    assert!(d.aliases.contains(&"connectwisecrmrest".to_string()));
    assert!(d.supports("webhooks") && d.supports("polling"));
    assert!(d
        .config_keys
        .iter()
        .any(|k| k.name == "helpdesk.connectwise.company" && k.required));

    let config = vec![(
        "connectwise.webhook.verify.signature".to_string(),
        "false".to_string(),
    )];
    let request = HttpRequest {
        method: "POST".into(),
        url: "/events/connectwise/MQ==".into(),
        query: String::new(),
        headers: vec![],
        body: connectwise_callback(),
    };
    let outcome = plugin
        .webhook(
            CallLabel::default(),
            FetchScope::default(),
            &config,
            &request,
        )
        .await
        .unwrap();
    let WebhookOutcome::Accepted(accepted) = outcome else {
        panic!("expected events")
    };
    assert_eq!(
        accepted.message_id.as_deref(),
        Some("5f1a2b3c-0000-4000-8000-000000000001")
    );
    assert_eq!(accepted.events.len(), 1);
    let e = &accepted.events[0];
    assert_eq!(e.event_type, EventType::Updated);
    assert_eq!(
        (e.object_type.as_str(), e.object_id.as_str()),
        ("ticket", "4711")
    );
    assert_eq!(e.date, "2024-05-01T12:34:56Z");
    let raw: serde_json::Value = serde_json::from_str(&e.raw).unwrap();
    assert_eq!(raw["summary"], "Printer on fire");
}

#[tokio::test(flavor = "multi_thread")]
async fn infinite_loop_is_stopped_while_other_calls_are_served() {
    let rt = runtime(300, 64);
    let plugin = rt.load(&plugin_bytes("probe")).await.unwrap();
    let looping = {
        let p = plugin.clone();
        tokio::spawn(async move { call_probe(&p, "loop").await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    for _ in 0..20 {
        assert!(matches!(
            call_probe(&plugin, "ok").await,
            Ok(WebhookOutcome::Accepted(_))
        ));
    }
    assert!(
        !looping.is_finished(),
        "the looping call should still be running"
    );
    match looping.await.unwrap() {
        Err(CallError::Timeout(limit)) => assert_eq!(limit, Duration::from_millis(300)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(call_probe(&plugin, "ok").await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_hungry_plugin_is_capped() {
    let rt = runtime(5_000, 32);
    let plugin = rt.load(&plugin_bytes("probe")).await.unwrap();
    match call_probe(&plugin, "alloc").await {
        Err(CallError::Memory(limit)) => assert_eq!(limit, 32 << 20),
        other => panic!("expected the memory cap, got {other:?}"),
    }
    assert!(call_probe(&plugin, "ok").await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn trap_fails_that_call_only() {
    let rt = runtime(1000, 64);
    let plugin = rt.load(&plugin_bytes("probe")).await.unwrap();
    let trap = call_probe(&plugin, "trap").await;
    assert!(matches!(trap, Err(CallError::Trap(_))), "{trap:?}");
    assert!(call_probe(&plugin, "ok").await.is_ok());
    let typed = call_probe(&plugin, "bad").await;
    assert!(matches!(&typed, Err(CallError::Element(_))), "{typed:?}");
    assert_eq!(typed.unwrap_err().kind(), "bad_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn components_not_matching_the_contract_are_rejected() {
    let rt = runtime(1000, 64);
    type Case<'a> = (&'a [u8], fn(&LoadError) -> bool, &'a str);
    let cases: [Case; 3] = [
        (
            b"(component)",
            |e| matches!(e, LoadError::Contract(_)),
            "plugboard:element/element@0.1.0",
        ),
        (
            b"(module)",
            |e| matches!(e, LoadError::Invalid(_)),
            "core WebAssembly module",
        ),
        (
            br#"(component
                 (core module $m (func (export "d") (result i32) i32.const 0))
                 (core instance $i (instantiate $m))
                 (func $d (result u32) (canon lift (core func $i "d")))
                 (instance $e (export "describe" (func $d)))
                 (export "plugboard:element/element@0.1.0" (instance $e)))"#,
            |e| matches!(e, LoadError::Contract(_)),
            "does not have export `webhook`",
        ),
    ];
    for (text, kind, needle) in cases {
        let wasm = wat_to_binary(text);
        let err = rt.load(&wasm).await.err().expect("must be rejected");
        assert!(kind(&err), "wrong kind: {err:?}");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
    let garbage = rt.load(b"not wasm at all").await.err().unwrap();
    assert!(matches!(garbage, LoadError::Invalid(_)), "{garbage:?}");
}

fn wat_to_binary(text: &[u8]) -> Vec<u8> {
    wat::parse_bytes(text).expect("valid WAT").into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_plugins_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let bytes = plugin_bytes("probe");
    let first = Runtime::new(config.clone())
        .unwrap()
        .load(&bytes)
        .await
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one artifact: {files:?}");
    assert!(files[0].to_string_lossy().contains(first.content_hash()));
    let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    // A restart (new runtime, same engine settings) loads the artifact instead of recompiling.
    let second = Runtime::new(config).unwrap().load(&bytes).await.unwrap();
    assert_eq!(second.content_hash(), first.content_hash());
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        modified
    );
    assert!(call_probe(&second, "ok").await.is_ok());
}

async fn watched_registry(
    dir: &std::path::Path,
) -> (Arc<Registry>, plugboard::registry::WatchHandle) {
    let registry = Registry::new(runtime(1000, 64), dir);
    let handle = registry.watch().await.unwrap();
    (registry, handle)
}

/// How long a test waits for the registry to act on a new file. Generous:
/// acting on a file means compiling it, which can wait behind the large
/// JavaScript and Python components other tests compile at the same time.
const COMPILE_WAIT: Duration = Duration::from_secs(60);

async fn wait_for_hash(registry: &Arc<Registry>, key: &str, hash: &str) {
    wait_until(&format!("{key} to serve {hash}"), COMPILE_WAIT, || async {
        registry
            .get(key)
            .filter(|p| p.plugin.content_hash() == hash)
            .map(|_| ())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_swap_under_concurrent_calls_never_fails_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("probe.wasm");
    let base = plugin_bytes("probe");
    write_atomic(&target, &base);
    let (registry, _watch) = watched_registry(dir.path()).await;
    wait_for_hash(
        &registry,
        "probe",
        &plugboard::runtime::ElementPlugin::hash_of(&base),
    )
    .await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (registry, stop, ok) = (registry.clone(), stop.clone(), ok.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let loaded = registry
                    .get("probe")
                    .expect("probe must stay loaded during swaps");
                match call_probe(&loaded.plugin, "ok").await {
                    Ok(WebhookOutcome::Accepted(_)) => ok.fetch_add(1, Ordering::Relaxed),
                    other => panic!("call failed during a swap: {other:?}"),
                };
            }
        }));
    }
    for n in 1..=50 {
        let next = variant(&base, n);
        write_atomic(&target, &next);
        wait_for_hash(
            &registry,
            "probe",
            &plugboard::runtime::ElementPlugin::hash_of(&next),
        )
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.expect("no caller may fail");
    }
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "calls kept flowing during the swaps"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_replacement_keeps_the_old_version_and_delete_unloads() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("probe.wasm");
    let good = plugin_bytes("probe");
    let good_hash = plugboard::runtime::ElementPlugin::hash_of(&good);
    write_atomic(&target, &good);
    let (registry, _watch) = watched_registry(dir.path()).await;
    wait_for_hash(&registry, "probe", &good_hash).await;

    write_atomic(&target, b"\0asm\x0d\0\x01\0 definitely broken");
    let error = wait_until(
        "the broken file to be reported",
        Duration::from_secs(20),
        || async {
            registry
                .snapshot()
                .files()
                .iter()
                .find(|f| f.file == "probe.wasm")
                .and_then(|f| f.last_error.clone())
        },
    )
    .await;
    assert!(
        error.contains("not a valid WebAssembly component"),
        "{error}"
    );
    let serving = registry.get("probe").expect("old version keeps serving");
    assert_eq!(serving.plugin.content_hash(), good_hash);
    assert!(call_probe(&serving.plugin, "ok").await.is_ok());

    // Editor and temporary files are ignored.
    for name in [
        ".probe.wasm.swp",
        "probe.wasm~",
        "other.wasm.tmp",
        ".hidden.wasm",
    ] {
        std::fs::write(dir.path().join(name), &good).unwrap();
    }
    // A second file claiming the same key is refused with a clear error.
    write_atomic(&dir.path().join("probe-copy.wasm"), &variant(&good, 7));
    let conflict = wait_until("the key conflict to be reported", COMPILE_WAIT, || async {
        registry
            .snapshot()
            .files()
            .iter()
            .find(|f| f.file == "probe-copy.wasm")
            .and_then(|f| f.last_error.clone())
    })
    .await;
    assert!(
        conflict.contains("element key 'probe' is already served by probe.wasm"),
        "{conflict}"
    );
    let files: Vec<String> = registry
        .snapshot()
        .files()
        .iter()
        .map(|f| f.file.clone())
        .collect();
    assert_eq!(files, ["probe-copy.wasm", "probe.wasm"]);
    std::fs::remove_file(dir.path().join("probe-copy.wasm")).unwrap();

    std::fs::remove_file(&target).unwrap();
    wait_until("probe to be unloaded", Duration::from_secs(20), || async {
        registry.get("probe").is_none().then_some(())
    })
    .await;
    // A call that took the plugin before deletion still completes.
    assert!(call_probe(&serving.plugin, "ok").await.is_ok());
}
