//! The element contract in three languages, side by side: for the bundled
//! Rust (ConnectWise), JavaScript (GitHub) and Python (Shopify) elements, the
//! component's size, its cold compile time (`Runtime::load` with no cache of
//! compiled artifacts) and the cost of one webhook call on a realistic
//! delivery of under 1 KB, with a fresh instance and, for the elements that
//! declare themselves stateless (GitHub, Shopify), with a warm instance
//! kept for the element instance — one call at a time (criterion),
//! then at the runtime's configured concurrency: `max_concurrent_calls`
//! calls in flight on a multi-threaded executor with one worker per core, as
//! in the host, reporting calls per second and CPU per call of the process.
//! The runtime is configured as the host configures it (defaults, compiled
//! artifacts served from a cache folder).
//!
//! The GitHub and Shopify deliveries are signed and verified (one host HMAC
//! each); ConnectWise's signature check needs a key fetch, so it is turned
//! off for this benchmark, as in `plugin_call`.
//!
//! Run: `cargo bench -p plugboard --bench languages` (after `plugins/build.sh`).
//! `LANGUAGES_CONCURRENT_CALLS` (default 2000; 200 under `cargo test`) sets
//! the calls of the concurrent round.

#![allow(missing_docs)] // criterion_group! generates undocumented items

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use plugboard::runtime::{
    CallLabel, ElementPlugin, FetchScope, Header, HttpRequest, Runtime, RuntimeConfig,
    WebhookOutcome,
};
use serde_json::json;
use sha2::Sha256;

/// One element under test: its plugin file, an instance configuration and a delivery.
struct Subject {
    language: &'static str,
    element: &'static str,
    config: Vec<(String, String)>,
    request: HttpRequest,
}

const SECRET: &str = "bench-webhook-secret";

fn hmac_sha256(body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn request(element: &str, headers: Vec<(&str, String)>, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: format!("/events/{element}/MQ=="),
        query: String::new(),
        headers: headers
            .into_iter()
            .map(|(name, value)| Header {
                name: name.into(),
                value,
            })
            .collect(),
        body,
    }
}

fn connectwise() -> Subject {
    let entity = json!({
        "id": 4711, "summary": "Printer on fire in the east wing, third floor",
        "board": {"id": 1, "name": "Service"}, "status": {"id": 16, "name": "New"},
        "company": {"id": 250, "identifier": "ACME", "name": "ACME Corporation"},
        "contact": {"id": 31, "name": "Jane Doe"}, "priority": {"id": 4, "name": "Priority 3 - Normal"},
        "severity": "Medium", "impact": "Medium", "approved": true, "closedFlag": false,
        "_info": {"lastUpdated": "2024-05-01T12:34:56Z", "dateEntered": "2024-05-01T12:00:00Z", "updatedBy": "jdoe"}
    });
    let body = serde_json::to_vec(&json!({
        "MessageId": "5f1a2b3c-0000-4000-8000-000000000001", "FromUrl": "https://api-na.myconnectwise.net",
        "CompanyId": "acme", "MemberId": "jdoe", "Action": "updated", "Type": "ticket", "ID": 4711,
        "CallbackObjectRecId": 12, "Entity": entity.to_string(),
        "Metadata": {"key_url": "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=1"}
    }))
    .unwrap();
    Subject {
        language: "Rust",
        element: "connectwise",
        config: vec![
            ("helpdesk.connectwise.company".into(), "acme".into()),
            (
                "connectwise.webhook.verify.signature".into(),
                "false".into(),
            ),
        ],
        request: request("connectwise", vec![], body),
    }
}

fn github() -> Subject {
    let body = serde_json::to_vec(&json!({
        "action": "edited",
        "issue": {
            "id": 1296269, "number": 1347, "title": "Found a bug", "state": "open", "locked": false,
            "body": "The printer in the east wing is on fire again; see the attached log.",
            "user": {"login": "octocat", "id": 1, "type": "User", "site_admin": false},
            "labels": [{"id": 208045946, "name": "bug", "color": "f29513", "default": true}],
            "comments": 3, "created_at": "2024-05-01T12:00:00Z", "updated_at": "2024-05-01T12:34:56Z",
            "url": "https://api.github.com/repos/octocat/Hello-World/issues/1347",
            "html_url": "https://github.com/octocat/Hello-World/issues/1347"
        },
        "repository": {
            "id": 1296269, "full_name": "octocat/Hello-World", "private": false,
            "owner": {"login": "octocat", "id": 1, "type": "User"},
            "html_url": "https://github.com/octocat/Hello-World", "default_branch": "main"
        },
        "sender": {"login": "octocat", "id": 1, "type": "User", "site_admin": false}
    }))
    .unwrap();
    let signature = format!("sha256={}", hex::encode(hmac_sha256(&body)));
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-github-event", "issues".to_string()),
        (
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string(),
        ),
        ("x-hub-signature-256", signature),
    ];
    Subject {
        language: "JavaScript",
        element: "github",
        config: vec![("github.webhook.secret".into(), SECRET.into())],
        request: request("github", headers, body),
    }
}

fn shopify() -> Subject {
    let body = serde_json::to_vec(&json!({
        "id": 820982911946154508_u64, "email": "jon@example.com", "name": "#9999",
        "created_at": "2024-05-01T08:00:00-04:00", "updated_at": "2024-05-01T08:05:00-04:00",
        "currency": "USD", "financial_status": "paid", "total_price": "403.00",
        "customer": {"id": 115310627314723954_u64, "email": "john@example.com", "first_name": "John", "last_name": "Smith"},
        "line_items": [
            {"id": 866550311766439020_u64, "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00", "sku": "IPOD2008PINK"},
            {"id": 141249953214522974_u64, "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00", "sku": "IPOD2008BLACK"}
        ],
        "shipping_address": {"address1": "123 Shipping Street", "city": "Shippington", "country": "US", "zip": "40003"},
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508"
    }))
    .unwrap();
    let signature = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&body));
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-shopify-topic", "orders/updated".to_string()),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_string(),
        ),
        ("x-shopify-hmac-sha256", signature),
    ];
    Subject {
        language: "Python",
        element: "shopify",
        config: vec![("shopify.webhook.secret".into(), SECRET.into())],
        request: request("shopify", headers, body),
    }
}

/// Runs `calls` webhook calls of `plugin` with `in_flight` of them at once
/// on a multi-threaded executor; prints calls/s and CPU per call.
fn concurrent(
    plugin: &ElementPlugin,
    subject: &Subject,
    label: &CallLabel,
    in_flight: usize,
    calls: usize,
) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let (cpu, started) = (load::cpu_seconds("self"), Instant::now());
    rt.block_on(async {
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let (plugin, next, label) = (plugin.clone(), next.clone(), label.clone());
                let (config, request) = (subject.config.clone(), subject.request.clone());
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < calls {
                        let outcome = plugin
                            .webhook(label.clone(), FetchScope::default(), &config, &request)
                            .await
                            .unwrap();
                        assert!(matches!(outcome, WebhookOutcome::Accepted(_)));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let (secs, cpu) = (
        started.elapsed().as_secs_f64(),
        load::cpu_seconds("self") - cpu,
    );
    (calls as f64 / secs, cpu * 1e6 / calls as f64)
}

fn bench(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).unwrap();
    assert!(
        runtime.is_pooled(),
        "benchmark expects the pooling allocator"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("languages");
    for subject in [connectwise(), github(), shopify()] {
        let path = format!(
            "{}/../plugins/dist/{}.wasm",
            env!("CARGO_MANIFEST_DIR"),
            subject.element
        );
        let wasm = std::fs::read(&path).expect("run plugins/build.sh first");
        let started = Instant::now();
        let plugin = rt.block_on(runtime.load(&wasm)).unwrap();
        eprintln!(
            "{:<10} {:<12} {:>10} bytes, cold compile and describe {:>8.2?}, body {} bytes",
            subject.language,
            subject.element,
            wasm.len(),
            started.elapsed(),
            subject.request.body.len()
        );
        // A call for no instance always gets a fresh instance; a call for
        // an instance of a stateless element may get a warm one.
        let fresh = CallLabel::default();
        let warm = CallLabel {
            element: subject.element.into(),
            instance: Some(1),
        };
        let mut kinds = vec![("fresh", fresh)];
        if plugin.description().stateless {
            kinds.push(("warm", warm));
        }
        for (kind, label) in kinds {
            let call = || {
                rt.block_on(plugin.webhook(
                    label.clone(),
                    FetchScope::default(),
                    &subject.config,
                    &subject.request,
                ))
                .unwrap()
            };
            assert!(matches!(call(), WebhookOutcome::Accepted(ref e) if e.events.len() == 1));
            let name = format!("{}_{}_{kind}", subject.language, subject.element);
            group.bench_function(name, |b| b.iter(call));
            let in_flight = runtime.config().max_concurrent_calls;
            let calls = std::env::var("LANGUAGES_CONCURRENT_CALLS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(if load::full_run() { 2_000 } else { 200 });
            let (rate, cpu_per_call) = concurrent(&plugin, &subject, &label, in_flight, calls);
            eprintln!(
                "{:<10} {:<12} {kind:<5} {calls} calls, {in_flight} in flight: {rate:>8.0} \
                 calls/s, {cpu_per_call:>6.0} us CPU per call",
                subject.language, subject.element
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
