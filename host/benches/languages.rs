//! The element contract in four languages, side by side: for the bundled
//! Rust (ConnectWise), JavaScript (GitHub), Python (Shopify) and C (Linear)
//! elements, the component's size, its cold compile time (`Runtime::load`
//! with no cache of compiled artifacts) and the cost of one webhook call on
//! a realistic delivery of about 1 KB, with a fresh instance and, for the
//! elements that declare themselves stateless (all four bundled ones),
//! with a warm instance kept for the element instance — one call at a time
//! (criterion), then at the runtime's configured concurrency:
//! `max_concurrent_calls` calls in flight on a multi-threaded executor with
//! one worker per core, as in the host, reporting calls per second, CPU per
//! call and minor page faults per call of the process (pages a call touched
//! for the first time or copied on write: what a fresh instance costs the
//! kernel). The runtime is configured as the host
//! configures it (defaults, compiled artifacts served from a cache folder).
//!
//! The GitHub, Shopify and Linear deliveries are signed and verified (one
//! host HMAC each); ConnectWise's signature check needs a key fetch, so it
//! is turned off for this benchmark, as in `plugin_call`. Linear's delivery
//! carries a `webhookTimestamp` taken from the clock just before its row
//! runs, and the element checks it against the host's clock on every call;
//! its instance allows 300 s of age (`linear.webhook.max-age-seconds`) so
//! that the row's last calls, some tens of seconds later, are still fresh.
//!
//! Run: `cargo bench -p plugboard --bench languages` (after `plugins/build.sh`).
//! `LANGUAGES_CONCURRENT_CALLS` (default 2000; 200 under `cargo test`) sets
//! the calls of the concurrent round.

#![allow(missing_docs)] // criterion_group! generates undocumented items

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use load::element::{bench_calls, hmac_sha256, load_cold, request, Subject, SECRET};
use plugboard::runtime::{CallLabel, ElementPlugin, FetchScope, WebhookOutcome};
use serde_json::json;

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
        label: "Rust",
        dir: "dist",
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
        label: "JavaScript",
        dir: "dist",
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
        label: "Python",
        dir: "dist",
        element: "shopify",
        config: vec![("shopify.webhook.secret".into(), SECRET.into())],
        request: request("shopify", headers, body),
    }
}

fn linear() -> Subject {
    let sent = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let body = serde_json::to_vec(&json!({
        "action": "update", "type": "Issue", "createdAt": "2024-05-01T12:34:56.000Z",
        "organizationId": "3d8f5a2e-7c41-4b0e-9f6a-1c2d3e4f5a6b",
        "data": {
            "id": "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9", "identifier": "ENG-42", "number": 42,
            "title": "Printer on fire in the east wing, third floor", "priority": 2,
            "priorityLabel": "High", "estimate": 3, "boardOrder": 0, "sortOrder": -1234.5,
            "createdAt": "2024-05-01T12:00:00.000Z", "updatedAt": "2024-05-01T12:34:56.000Z",
            "teamId": "72b2a2dc-6f4f-4423-9d34-24b5bd10634a", "stateId": "a6c1f2b7-0f3e-4c55-8e2b-6f7d8e9fa0b1",
            "assigneeId": "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9", "labelIds": ["0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"],
            "state": {"id": "a6c1f2b7-0f3e-4c55-8e2b-6f7d8e9fa0b1", "name": "In Progress", "type": "started"},
            "team": {"id": "72b2a2dc-6f4f-4423-9d34-24b5bd10634a", "key": "ENG", "name": "Engineering"}
        },
        "updatedFrom": {"updatedAt": "2024-05-01T12:30:00.000Z", "priority": 3},
        "url": "https://linear.app/acme/issue/ENG-42/printer-on-fire",
        "webhookTimestamp": sent.as_millis() as u64,
        "webhookId": "000042e3-d123-4980-b49f-8e140eef9329"
    }))
    .unwrap();
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("linear-event", "Issue".to_string()),
        (
            "linear-delivery",
            "234d1a4e-b617-4388-90fe-adc3633d6b72".to_string(),
        ),
        ("linear-signature", hex::encode(hmac_sha256(&body))),
    ];
    Subject {
        label: "C",
        dir: "dist",
        element: "linear",
        config: vec![
            ("linear.webhook.secret".into(), SECRET.into()),
            ("linear.webhook.max-age-seconds".into(), "300".into()),
        ],
        request: request("linear", headers, body),
    }
}

/// What the concurrent round measured.
struct Round {
    calls_per_second: f64,
    cpu_us_per_call: f64,
    minor_faults_per_call: f64,
}

/// Runs `calls` webhook calls of `plugin` with `in_flight` of them at once
/// on a multi-threaded executor.
fn concurrent(
    plugin: &ElementPlugin,
    subject: &Subject,
    label: &CallLabel,
    in_flight: usize,
    calls: usize,
) -> Round {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let (cpu, faults, started) = (
        load::cpu_seconds("self"),
        load::minor_faults("self"),
        Instant::now(),
    );
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
    let secs = started.elapsed().as_secs_f64();
    Round {
        calls_per_second: calls as f64 / secs,
        cpu_us_per_call: (load::cpu_seconds("self") - cpu) * 1e6 / calls as f64,
        minor_faults_per_call: (load::minor_faults("self") - faults) / calls as f64,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls = load::env_usize(
        "LANGUAGES_CONCURRENT_CALLS",
        if load::full_run() { 2_000 } else { 200 },
    );
    let mut group = c.benchmark_group("languages");
    // Each subject is made just before its row runs (Linear's timestamp is
    // taken then).
    let subjects: [fn() -> Subject; 4] = [connectwise, github, shopify, linear];
    for make in subjects {
        let subject = make();
        let loaded = load_cold(&rt, &subject.wasm(), 1);
        eprintln!(
            "{:<10} {:<12} {:>10} bytes, cold compile and describe {:>8.2?}, body {} bytes",
            subject.label,
            subject.element,
            loaded.size,
            loaded.cold,
            subject.request.body.len()
        );
        let in_flight = loaded.runtime.config().max_concurrent_calls;
        bench_calls(&mut group, &rt, &loaded, &subject, |kind, label| {
            let round = concurrent(&loaded.plugin, &subject, label, in_flight, calls);
            eprintln!(
                "{:<10} {:<12} {kind:<5} {calls} calls, {in_flight} in flight: {:>8.0} \
                 calls/s, {:>6.0} us CPU and {:>6.1} minor page faults per call",
                subject.label,
                subject.element,
                round.calls_per_second,
                round.cpu_us_per_call,
                round.minor_faults_per_call
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
