//! What an element gains by calling the host's crypto helpers instead of
//! carrying its own, per call and at hot-load.
//!
//! The test-only elements `helpers-host` and `helpers-guest` are one Rust
//! source (`plugins/helpers-host`) built twice: each verifies the same
//! `x-signature: hex(HMAC-SHA256(secret, body))` of a delivery of about
//! 1 KB and names the body by its SHA-256 in hex and base64. `helpers-host`
//! does it through the host's `hex-decode`, `hmac-sha256`,
//! `constant-time-eq`, `sha256`, `hex-encode` and `base64-encode`;
//! `helpers-guest` with the `hmac`, `sha2`, `hex` and `base64` crates
//! compiled into the component. Side by side, for each: the component's
//! size, its cold compile time (the median of `HELPERS_COLD_LOADS`
//! `Runtime::load`s, default 5, each with an empty artifact cache) and the
//! time of one webhook call (criterion), in a fresh instance and in a warm
//! one (both elements are stateless). A closing table repeats the figures
//! with the median of `HELPERS_CALLS` timed calls of each kind (default
//! 2000).
//!
//! Run: `cargo bench -p plugboard --bench host_helpers` (after
//! `plugins/build.sh`). Under `cargo test` it runs one cold load and a few
//! calls of each.

#![allow(missing_docs)] // criterion_group! generates undocumented items

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use load::element::{
    bench_calls, call_kinds, hmac_sha256, load_cold, request, Loaded, Subject, SECRET,
};
use plugboard::runtime::{CallError, CallLabel, ElementError, FetchScope};
use serde_json::json;

/// The delivery both elements verify: a JSON body of about 1 KB, signed.
fn subject(label: &'static str, element: &'static str) -> Subject {
    let lines: Vec<_> = (1..=9)
        .map(|n| json!({"sku": format!("SKU-{n:04}"), "title": "Replacement toner cartridge, black", "quantity": n, "price": "49.90"}))
        .collect();
    let body = serde_json::to_vec(&json!({
        "id": "evt_01HZX3Q9K7M2N4P6R8T0V2W4Y6", "type": "order.updated",
        "created": "2024-05-01T12:34:56Z", "customer": {"id": "cus_4711", "email": "jane@example.com"},
        "lines": lines, "total": "1497.00", "currency": "EUR"
    }))
    .unwrap();
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-signature", hex::encode(hmac_sha256(&body))),
    ];
    Subject {
        label,
        dir: "dist-test",
        element,
        config: vec![("helpers.webhook.secret".into(), SECRET.into())],
        request: request(element, headers, body),
    }
}

/// Checks that `subject`'s element really verifies: the same delivery
/// signed with another secret is refused as unauthorized.
fn assert_refuses_forgery(rt: &tokio::runtime::Runtime, loaded: &Loaded, subject: &Subject) {
    let mut forged = subject.request.clone();
    for header in &mut forged.headers {
        if header.name == "x-signature" {
            header.value = "00".repeat(32);
        }
    }
    let answer = rt.block_on(loaded.plugin.webhook(
        CallLabel::default(),
        FetchScope::default(),
        &subject.config,
        &forged,
    ));
    assert!(
        matches!(
            answer,
            Err(CallError::Element(ElementError::Unauthorized(_)))
        ),
        "{}: a forged signature was not refused: {answer:?}",
        subject.element
    );
}

/// The median time of one call of `subject`, over `calls` calls.
fn median_call(
    rt: &tokio::runtime::Runtime,
    loaded: &Loaded,
    subject: &Subject,
    label: &CallLabel,
    calls: usize,
) -> Duration {
    let mut times: Vec<_> = (0..calls.max(1))
        .map(|_| {
            let started = Instant::now();
            subject.call(rt, &loaded.plugin, label);
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let full = load::full_run();
    let rounds = load::env_usize("HELPERS_COLD_LOADS", if full { 5 } else { 1 });
    let calls = load::env_usize("HELPERS_CALLS", if full { 2_000 } else { 20 });
    let mut group = c.benchmark_group("host_helpers");
    let mut table = Vec::new();
    for subject in [
        subject("verify", "helpers-host"),
        subject("verify", "helpers-guest"),
    ] {
        let loaded = load_cold(&rt, &subject.wasm(), rounds);
        assert_refuses_forgery(&rt, &loaded, &subject);
        bench_calls(&mut group, &rt, &loaded, &subject, |_, _| {});
        let per_call: Vec<_> = call_kinds(&loaded.plugin, &subject)
            .iter()
            .map(|(kind, label)| (*kind, median_call(&rt, &loaded, &subject, label, calls)))
            .collect();
        table.push((subject.element, loaded.size, loaded.cold, per_call));
    }
    group.finish();
    eprintln!(
        "\nhost helpers vs the same crypto in the guest ({} byte body; cold: median of {rounds} \
         loads; calls: median of {calls}):",
        subject("verify", "helpers-host").request.body.len()
    );
    for (element, size, cold, per_call) in table {
        let calls: Vec<_> = per_call
            .iter()
            .map(|(kind, time)| format!("{kind} {:>6.1} us", time.as_secs_f64() * 1e6))
            .collect();
        eprintln!(
            "{element:<14} {size:>8} bytes  cold compile and describe {:>8.2?}  one call: {}",
            cold,
            calls.join(", ")
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
