//! Inbound connections that misbehave cannot exhaust the host: idle, half-sent
//! and body-less connections are closed by the header and body deadlines,
//! connections past the limit are refused at once with a 503, an oversized
//! webhook gets its 413 instead of a reset, and idle keep-alive connections
//! do not hold up a shutdown.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::host::webhook_path;
use crate::support::process::{probe_instance, probe_webhook as webhook, Binary, Process};
use crate::support::{plugin_bytes, wait_until};

/// Where the probe instances deliver: a closed loopback port.
const CLOSED_PORT_CALLBACK: &str = "http://127.0.0.1:9/hook";

/// A real `plugboard serve` with the probe element and the given settings.
async fn start(settings: &[(&str, &str)]) -> (Process, tempfile::TempDir, tempfile::TempDir) {
    plugboard::server::raise_open_file_limit();
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    let data = tempfile::tempdir().unwrap();
    // The probe instances deliver to a closed loopback port.
    let mut binary = Binary::serve(plugins.path(), data.path())
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1");
    for (key, value) in settings {
        binary = binary.env(key, value);
    }
    let process = binary.spawn();
    process.wait_ready().await;
    (process, plugins, data)
}

/// Opens `n` connections to `port`, each sending `prefix` (maybe nothing).
async fn open(port: u16, n: usize, prefix: &[u8]) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        if !prefix.is_empty() {
            s.write_all(prefix).await.unwrap();
        }
        streams.push(s);
    }
    streams
}

/// Waits until the host has closed every one of `streams` (end of stream
/// or reset), reading and dropping whatever it answered first.
async fn closed_by_host(streams: Vec<TcpStream>, deadline: Duration) -> Vec<Vec<u8>> {
    let reads = streams.into_iter().map(|mut s| {
        tokio::spawn(async move {
            let mut answer = Vec::new();
            tokio::time::timeout(deadline, s.read_to_end(&mut answer))
                .await
                .map(|_| answer)
        })
    });
    let mut answers = Vec::new();
    for read in reads {
        answers.push(
            read.await
                .unwrap()
                .expect("the host closed the connection in time"),
        );
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_half_sent_connections_are_closed_while_the_host_keeps_serving() {
    let (process, _plugins, _data) = start(&[
        ("PLUGBOARD_HEADER_READ_TIMEOUT_SECS", "3"),
        ("PLUGBOARD_BODY_READ_TIMEOUT_SECS", "3"),
    ])
    .await;
    let base = process.base();
    let id = probe_instance(&base, CLOSED_PORT_CALLBACK).await;

    // More idle connections than the default open-file limit of 1,024.
    let idle = open(process.port, 1_100, b"").await;
    let half_headers = open(
        process.port,
        20,
        b"POST /events/probe HTTP/1.1\r\nhost: x\r\n",
    )
    .await;
    let no_body = open(
        process.port,
        20,
        format!(
            "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
            webhook_path("probe", id)
        )
        .as_bytes(),
    )
    .await;

    let started = Instant::now();
    let health = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("/healthz answers with 1,140 idle connections open");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        webhook(&base, id).await,
        StatusCode::OK,
        "a webhook is still accepted"
    );
    let busy = started.elapsed();

    closed_by_host(idle, Duration::from_secs(15)).await;
    closed_by_host(half_headers, Duration::from_secs(15)).await;
    let answers = closed_by_host(no_body, Duration::from_secs(15)).await;
    for answer in answers {
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 408"),
            "a body that never arrives is a 408: {text}"
        );
    }
    assert!(
        !process.log().contains("Too many open files"),
        "{}",
        process.log()
    );
    eprintln!("healthz and a webhook with 1,140 idle connections: {busy:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_limit_are_refused_at_once() {
    let (process, _plugins, _data) = start(&[("PLUGBOARD_MAX_CONNECTIONS", "40")]).await;
    // 45 connections against a limit of 40: the five past it (six if the
    // readiness probe's connection still holds a slot) are answered at once.
    let streams = open(process.port, 45, b"").await;
    let reads: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut answer = Vec::new();
                let read =
                    tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut answer)).await;
                (s, read.is_ok().then_some(answer))
            })
        })
        .collect();
    let mut refused = 0;
    let mut held = Vec::new();
    for read in reads {
        let (stream, answer) = read.await.unwrap();
        let Some(answer) = answer else {
            held.push(stream);
            continue;
        };
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(text.contains("retry-after: 1"), "{text}");
        assert!(text.contains("too_many_connections"), "{text}");
        refused += 1;
    }
    assert!((5..=6).contains(&refused), "{refused} refused");
    drop(held);
    let base = process.base();
    wait_until("a slot to free up", Duration::from_secs(10), || async {
        let r = reqwest::get(format!("{base}/healthz")).await.ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_webhook_gets_its_413() {
    let (process, _plugins, _data) = start(&[]).await;
    let base = process.base();
    let id = probe_instance(&base, CLOSED_PORT_CALLBACK).await;
    let body = vec![b'x'; 2 << 20];
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .post(format!("{base}{}", webhook_path("probe", id)))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("the vendor receives an answer, not a reset");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "payload_too_large");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_do_not_hold_up_a_shutdown() {
    let (mut process, _plugins, _data) = start(&[("PLUGBOARD_SHUTDOWN_TIMEOUT_SECS", "60")]).await;
    // Keep-alive connections that served a request and now sit idle.
    let mut idle = open(
        process.port,
        50,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    for s in &mut idle {
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    let started = Instant::now();
    process.terminate();
    assert!(process.exited(Duration::from_secs(15)).await.success());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "SIGTERM waited for idle connections: {took:?}"
    );
    closed_by_host(idle, Duration::from_secs(1)).await;
}
