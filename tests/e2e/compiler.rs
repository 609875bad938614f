//! Plugins missing from the compiled cache are compiled in a child process
//! (`plugboard plugins compile`): its artifact serves calls, a plugin that
//! does not compile is rejected with the compiler's reason, a compiler that
//! cannot start falls back to compiling in process, and the real binary
//! compiles each plugin once across restarts.

use std::path::PathBuf;

use plugboard::runtime::{CallLabel, FetchScope, HttpRequest, LoadError, Runtime, RuntimeConfig};
use serde_json::Value;

use crate::support::plugin_bytes;
use crate::support::process::{Binary, AUTH};

/// A component-layer header followed by junk: passes the "core module?"
/// check, so only compiling it can tell it is broken.
const BROKEN_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00\x07\xffjunk after the header";

fn runtime_with_compiler(cache: &std::path::Path, program: PathBuf) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        compiler_program: Some(program),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn artifacts(cache: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

async fn probe_answers(plugin: &plugboard::runtime::ElementPlugin) -> bool {
    let request = HttpRequest {
        method: "POST".into(),
        url: "/events/probe/ok".into(),
        query: String::new(),
        headers: vec![],
        body: br#"{"hello":"world"}"#.to_vec(),
    };
    plugin
        .webhook(
            CallLabel::default(),
            FetchScope::default(),
            &vec![],
            &request,
        )
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_process_compiles_what_the_host_then_serves() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime_with_compiler(cache.path(), env!("CARGO_BIN_EXE_plugboard").into());
    let bytes = plugin_bytes("probe");
    let plugin = rt.load(&bytes).await.unwrap();
    let files = artifacts(cache.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().contains(plugin.content_hash()));
    assert!(probe_answers(&plugin).await);

    let broken = rt
        .load(BROKEN_COMPONENT)
        .await
        .err()
        .expect("junk is rejected");
    match &broken {
        LoadError::Invalid(message) => assert!(
            !message.is_empty() && !message.contains("compiler process"),
            "the compiler's own reason comes back: {message}"
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(artifacts(cache.path()).len(), 1, "nothing cached for junk");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compiler_that_cannot_start_falls_back_to_compiling_in_process() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime_with_compiler(cache.path(), cache.path().join("no-such-program"));
    let plugin = rt.load(&plugin_bytes("probe")).await.unwrap();
    assert_eq!(artifacts(cache.path()).len(), 1);
    assert!(probe_answers(&plugin).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_compiles_each_plugin_once_outside_its_own_process() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    std::fs::write(plugins.path().join("broken.wasm"), BROKEN_COMPONENT).unwrap();

    let process = Binary::serve(plugins.path(), data.path()).spawn();
    process.wait_ready().await;
    let list: Vec<Value> = reqwest::Client::new()
        .get(format!("{}/plugins", process.base()))
        .header("Authorization", AUTH)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = |name: &str| list.iter().find(|p| p["file"] == name).unwrap().clone();
    assert_eq!(file("probe.wasm")["key"], "probe", "{list:?}");
    let error = file("broken.wasm")["lastError"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("not a valid WebAssembly component"),
        "{error}"
    );
    assert_eq!(
        process
            .log()
            .matches("plugin compiled in a child process")
            .count(),
        1,
        "{}",
        process.log()
    );
    assert_eq!(artifacts(&data.path().join("cache")).len(), 1);
    drop(process);

    // A restart maps the artifact: nothing is compiled again.
    let again = Binary::serve(plugins.path(), data.path()).spawn();
    again.wait_ready().await;
    assert!(
        !again.log().contains("plugin compiled in a child process"),
        "{}",
        again.log()
    );
}
