//! Settings layers with the real binary: a config file under the
//! environment under flags, and refusals that name the setting.

use std::time::Duration;

use crate::support::process::{free_port, Binary};
use crate::support::wait_until;

/// Which of `ports` answers `/healthz` first.
async fn answering(ports: &[u16]) -> u16 {
    let client = reqwest::Client::new();
    wait_until("the binary to listen", Duration::from_secs(30), || async {
        for port in ports {
            let url = format!("http://127.0.0.1:{port}/healthz");
            if client.get(&url).send().await.is_ok() {
                return Some(*port);
            }
        }
        None
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_beat_the_environment_which_beats_the_file() {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = data.path().join("plugboard.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{file_port}\"\ncall_timeout_ms = 0\n"),
    )
    .unwrap();
    let all = [file_port, env_port, flag_port];
    // call_timeout_ms = 0 in the file is invalid; the environment overrides it.
    let binary = |layers: u8| {
        let mut b = Binary::serve(plugins.path(), data.path())
            .env_remove("PLUGBOARD_LISTEN")
            .env("PLUGBOARD_CONFIG", &config)
            .env("PLUGBOARD_CALL_TIMEOUT_MS", "500");
        if layers >= 2 {
            b = b.env("PLUGBOARD_LISTEN", format!("127.0.0.1:{env_port}"));
        }
        if layers >= 3 {
            b = b.args(["--listen", &format!("127.0.0.1:{flag_port}")]);
        }
        b
    };
    for (layers, expected) in [(1, file_port), (2, env_port), (3, flag_port)] {
        let process = binary(layers).spawn();
        assert_eq!(answering(&all).await, expected, "{layers} layers");
        drop(process);
    }
}

#[test]
fn invalid_values_in_the_file_are_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "listen = \"nowhere\"",
            "listen = \"nowhere\"",
            "invalid socket address",
        ),
        ("retention_hours = -1", "retention_hours", "invalid value"),
        (
            "max_body_bytes = 0",
            "max_body_bytes (PLUGBOARD_MAX_BODY_BYTES",
            "greater than 0",
        ),
        ("colour = \"blue\"", "colour", "unknown field"),
        ("listen = ", "config file", "line 1"),
    ];
    for (text, setting, reason) in cases {
        let config = dir.path().join("plugboard.toml");
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("PLUGBOARD_DATA", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(setting) && stderr.contains(reason),
            "{text}: {stderr}"
        );
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(["serve"])
        .env("PLUGBOARD_CONFIG", "/nonexistent/plugboard.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/plugboard.toml"), "{stderr}");
}

/// One way to give a setting: flags, environment, file text; and what
/// the refusal must say.
type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn numbers_beyond_what_the_machine_can_honour_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plugboard.toml");
    let cases: [Case; 4] = [
        (
            &["--call-timeout-ms", "18446744073709551615"],
            &[],
            "",
            "call_timeout_ms (PLUGBOARD_CALL_TIMEOUT_MS, --call-timeout-ms) must be at most 3600000",
        ),
        (
            &[],
            &[("PLUGBOARD_MEMORY_LIMIT_MB", "99999999999")],
            "",
            "memory_limit_mb (PLUGBOARD_MEMORY_LIMIT_MB, --memory-limit-mb) must be at most 4096",
        ),
        (
            &[],
            &[],
            "max_concurrent_calls = 4294967295",
            "max_concurrent_calls (PLUGBOARD_MAX_CONCURRENT_CALLS, --max-concurrent-calls) must \
             be at most 4096",
        ),
        (
            &[],
            &[],
            "plugin_fetch_ports = [0]",
            "plugin_fetch_ports (PLUGBOARD_PLUGIN_FETCH_PORTS, --plugin-fetch-ports): 0 is not a port",
        ),
    ];
    for (args, env, file, needle) in cases {
        std::fs::write(&config, file).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
            .args(["serve", "--config"])
            .arg(&config)
            .args(args)
            .envs(env.iter().copied())
            .env("PLUGBOARD_DATA", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{needle}: {stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}
