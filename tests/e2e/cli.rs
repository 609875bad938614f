//! The `plugboard` binary itself: `plugins check` and start-up errors.

use std::process::Command;

use crate::support::repo_root;

fn plugboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_plugboard"))
}

/// What `plugins check` prints for the plugin file at `path` (relative to
/// the repository); panics unless it succeeds.
fn check(path: &str) -> serde_json::Value {
    let out = plugboard()
        .args(["plugins", "check"])
        .arg(repo_root().join(path))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What `plugins check` writes to stderr for the file at `path`; panics
/// unless it refuses the file (exit status 1).
fn check_refused(path: &std::path::Path) -> String {
    let out = plugboard()
        .args(["plugins", "check"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plugins_check_prints_the_description() {
    let described = check("plugins/dist/connectwise.wasm");
    assert_eq!(described["key"], "connectwise");
    assert_eq!(
        described["modes"],
        serde_json::json!(["webhooks", "polling"])
    );
    assert_eq!(described["contentHash"].as_str().unwrap().len(), 64);
    assert_eq!(described["contractVersion"], "0.2.0");
    assert_eq!(
        described["defaultPollConfiguration"]["tickets"],
        serde_json::json!({"url": "/service/tickets"})
    );
}

#[test]
fn plugins_check_names_the_contract_version_of_a_0_1_0_component() {
    let described = check("tests/fixtures/connectwise-0.1.0.wasm");
    assert_eq!(described["key"], "connectwise");
    assert_eq!(described["contractVersion"], "0.1.0");
    assert_eq!(
        described["defaultPollConfiguration"],
        serde_json::Value::Null
    );
}

#[test]
fn plugins_check_names_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "empty.wasm",
            wat::parse_str("(component)").unwrap(),
            "plugboard:element/element@0.1.0",
        ),
        (
            "core.wasm",
            wat::parse_str("(module)").unwrap(),
            "core WebAssembly module",
        ),
        (
            "junk.wasm",
            b"junk".to_vec(),
            "not a valid WebAssembly component",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let stderr = check_refused(&path);
        assert!(
            stderr.contains(needle) && stderr.contains(name),
            "{name}: {stderr}"
        );
    }
}

/// A component built from `wit` (a WIT package with an `element-plugin`
/// world) whose functions do nothing: enough for checks that call nothing.
fn component_from_wit(wit: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_source("element.wit", wit).unwrap();
    let world = resolve
        .select_world(&[package], Some("element-plugin"))
        .unwrap();
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

#[test]
fn plugins_check_names_the_export_whose_type_does_not_fit() {
    let wit = std::fs::read_to_string(repo_root().join("wit/element.wit")).unwrap();
    let right = "webhook: func(config: config, request: http-request) \
                 -> result<webhook-outcome, element-error>;";
    assert!(wit.contains(right), "the contract's webhook changed");
    let wrong = wit.replace(
        right,
        "webhook: func(config: config, request: http-request) -> http-response;",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong-webhook.wasm");
    std::fs::write(&path, component_from_wit(&wrong)).unwrap();
    let stderr = check_refused(&path);
    for needle in [
        "export `webhook`",
        "type mismatch with results",
        "-> record {status, headers, body}",
        "the contract wants `webhook: func(config: config, request: http-request) \
         -> result<webhook-outcome, element-error>`",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
    assert!(!stderr.contains("describe() failed"), "{stderr}");
}

#[test]
fn serve_refuses_invalid_settings_naming_them() {
    let data = tempfile::tempdir().unwrap();
    let cases = [
        (
            "PLUGBOARD_OUTBOUND_ALLOW_PRIVATE",
            "10.0.0.0/8, not-an-ip",
            "PLUGBOARD_OUTBOUND_ALLOW_PRIVATE",
        ),
        (
            "PLUGBOARD_CALL_TIMEOUT_MS",
            "0",
            "PLUGBOARD_CALL_TIMEOUT_MS",
        ),
        (
            "PLUGBOARD_USER_SECRET",
            "only-one",
            "PLUGBOARD_ORGANIZATION_SECRET",
        ),
        ("PLUGBOARD_LISTEN", "nowhere", "--listen"),
    ];
    for (var, value, needle) in cases {
        let out = plugboard()
            .arg("serve")
            .env(var, value)
            .env("PLUGBOARD_DATA", data.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} must be refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{var}={value}: {stderr}");
    }
}
