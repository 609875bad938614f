//! Contract versions: a ConnectWise component built against
//! `plugboard:element@0.1.0` (`tests/fixtures/connectwise-0.1.0.wasm`, built
//! before 0.2.0 existed) hot-loads into a host that also serves 0.2.0
//! components, reports its version, and passes the ConnectWise webhook flow
//! unchanged. Having no default poll configuration (a 0.1.0 description
//! cannot carry one), its polling instances must name their resources.
//! (`plugins check` naming the version: `cli.rs`.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ingress::{assert_webhook_flow, cw_instance, host_for};
use crate::support::connectwise::FakeConnectWise;
use crate::support::host::TestHost;
use crate::support::tls::TestCa;
use crate::support::{repo_root, wait_until, write_atomic};

/// The ConnectWise element as built from the 0.1.0 contract.
fn fixture() -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/connectwise-0.1.0.wasm")).unwrap()
}

/// `GET /plugins` entry of the file serving ConnectWise.
async fn connectwise_plugin(host: &TestHost) -> Value {
    let (status, plugins) = host.api(Method::GET, "/plugins", None).await;
    assert_eq!(status, StatusCode::OK, "{plugins}");
    plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["file"] == "connectwise.wasm")
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_1_0_component_keeps_loading_and_working() {
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let host = host_for(&cw, &ca, true).await;
    let current = connectwise_plugin(&host).await;
    assert_eq!(current["element"]["contractVersion"], "0.2.0", "{current}");

    write_atomic(&host.plugins.path().join("connectwise.wasm"), &fixture());
    let legacy = wait_until(
        "the 0.1.0 build to serve connectwise",
        Duration::from_secs(60),
        || async {
            let plugin = connectwise_plugin(&host).await;
            (plugin["element"]["contractVersion"] == "0.1.0").then_some(plugin)
        },
    )
    .await;
    assert_eq!(legacy["lastError"], Value::Null, "{legacy}");
    assert_eq!(legacy["element"]["key"], "connectwise");
    assert_eq!(legacy["element"]["defaultPollConfiguration"], Value::Null);

    assert_webhook_flow(&host, &cw).await;

    // No defaults: a polling instance naming no resources is refused.
    let mut polling = cw_instance(&cw);
    let configuration = polling["configuration"].as_object_mut().unwrap();
    configuration.insert("event.vendor.type".into(), json!("polling"));
    configuration.insert("event.poller.refresh_interval".into(), json!("15"));
    let (status, answer) = host.api(Method::POST, "/instances", Some(polling)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["field"], "configuration.event.poller.configuration",
        "{answer}"
    );
}
