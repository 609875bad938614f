//! Cost of one plugin call with a fresh instance: a realistic ConnectWise
//! callback (~1.5 KB) in, normalized events out.
//!
//! Run: `cargo bench -p plugboard --bench plugin_call` (after `plugins/build.sh`).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use plugboard::runtime::{
    CallLabel, FetchScope, HttpRequest, Runtime, RuntimeConfig, WebhookOutcome,
};

fn callback_body() -> Vec<u8> {
    let entity = serde_json::json!({
        "id": 4711, "summary": "Printer on fire in the east wing, third floor",
        "recordType": "ServiceTicket",
        "board": {"id": 1, "name": "Service", "_info": {"board_href": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/boards/1"}},
        "status": {"id": 16, "name": "New", "_info": {"status_href": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/boards/1/statuses/16"}},
        "company": {"id": 250, "identifier": "ACME", "name": "ACME Corporation", "_info": {"company_href": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies/250"}},
        "contact": {"id": 31, "name": "Jane Doe"}, "priority": {"id": 4, "name": "Priority 3 - Normal"},
        "severity": "Medium", "impact": "Medium", "approved": true, "closedFlag": false,
        "_info": {"lastUpdated": "2024-05-01T12:34:56Z", "dateEntered": "2024-05-01T12:00:00Z", "updatedBy": "jdoe", "enteredBy": "jdoe"}
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

fn bench(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/dist/connectwise.wasm"
    );
    let wasm = std::fs::read(path).expect("run plugins/build.sh first");
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    assert!(
        runtime.is_pooled(),
        "benchmark expects the pooling allocator"
    );
    // Calls run as they do in the host: asynchronously, here on a
    // current-thread runtime driven by the benchmark loop.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugin = rt.block_on(runtime.load(&wasm)).unwrap();
    let config = vec![
        (
            "helpdesk.connectwise.company".to_string(),
            "acme".to_string(),
        ),
        (
            "connectwise.webhook.verify.signature".to_string(),
            "false".to_string(),
        ),
    ];
    let request = HttpRequest {
        method: "POST".into(),
        url: "/events/connectwise/MQ==".into(),
        query: String::new(),
        headers: vec![],
        body: callback_body(),
    };
    let mut group = c.benchmark_group("plugin_call");
    group.throughput(Throughput::Bytes(request.body.len() as u64));
    group.bench_function("connectwise_webhook_fresh_instance", |b| {
        b.iter(|| {
            let out = rt
                .block_on(plugin.webhook(
                    CallLabel::default(),
                    FetchScope::default(),
                    &config,
                    &request,
                ))
                .unwrap();
            assert!(matches!(out, WebhookOutcome::Accepted(ref e) if e.events.len() == 1));
            out
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
