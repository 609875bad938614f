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
        let out = plugboard()
            .args(["plugins", "check"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(needle) && stderr.contains(name),
            "{name}: {stderr}"
        );
    }
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
