//! A fake ConnectWise Manage speaking the real protocol: it serves the
//! callback signing key at `Metadata.key_url` over HTTPS and builds signed
//! callbacks (`x-content-signature` = base64(HMAC-SHA256(key = SHA-256 of
//! the signing key, raw body))).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::tls::TestCa;

/// The fake vendor.
pub struct FakeConnectWise {
    /// Address of the HTTPS key server.
    pub addr: SocketAddr,
    /// The signing key it hands out.
    pub signing_key: String,
    key_fetches: Arc<AtomicUsize>,
}

impl FakeConnectWise {
    /// Starts the key server with a certificate from `ca`.
    pub async fn start(ca: &TestCa) -> Self {
        let signing_key = "cw-signing-key-0123456789abcdef".to_string();
        let key_fetches = Arc::new(AtomicUsize::new(0));
        let (key, count) = (signing_key.clone(), key_fetches.clone());
        let router = axum::Router::new().route(
            "/v4_6_release/system/callbackkey/index.rails",
            get(move || {
                count.fetch_add(1, Ordering::SeqCst);
                let key = key.clone();
                async move { axum::Json(json!({"id": 1, "signing_key": key})) }
            }),
        );
        let addr = ca.serve(router).await;
        Self {
            addr,
            signing_key,
            key_fetches,
        }
    }

    /// `helpdesk.connectwise.server.url` for instances talking to this fake.
    pub fn server_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The key URL ConnectWise puts in `Metadata.key_url`.
    pub fn key_url(&self) -> String {
        format!(
            "https://localhost:{}/v4_6_release/system/callbackkey/index.rails?id=1",
            self.addr.port()
        )
    }

    /// How many times the signing key was fetched.
    pub fn key_fetches(&self) -> usize {
        self.key_fetches.load(Ordering::SeqCst)
    }

    /// The `x-content-signature` of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let key = Sha256::digest(self.signing_key.as_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// A callback body as ConnectWise sends it (`Entity` is a JSON string).
    pub fn callback(
        &self,
        message_id: &str,
        action: &str,
        kind: &str,
        id: u64,
        key_url: &str,
    ) -> Vec<u8> {
        // A record of realistic size: the whole callback is about 1.5 KB.
        let entity = json!({
            "id": id, "name": format!("{kind} {id}"), "summary": "Printer on fire",
            "recordType": "ServiceTicket",
            "board": {"id": 1, "name": "Service", "_info": {"board_href": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/boards/1"}},
            "status": {"id": 16, "name": "New", "_info": {"status_href": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/boards/1/statuses/16"}},
            "company": {"id": 250, "identifier": "ACME", "name": "ACME Corporation", "_info": {"company_href": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies/250"}},
            "contact": {"id": 31, "name": "Jane Doe"}, "priority": {"id": 4, "name": "Priority 3 - Normal"},
            "severity": "Medium", "impact": "Medium", "approved": true, "closedFlag": false,
            "_info": {"lastUpdated": "2024-05-01T12:34:56Z", "dateEntered": "2024-05-01T12:00:00Z", "updatedBy": "jdoe", "enteredBy": "jdoe"}
        });
        let body: Value = json!({
            "MessageId": message_id, "FromUrl": "https://api-na.myconnectwise.net", "CompanyId": "acme",
            "MemberId": "jdoe", "Action": action, "Type": kind, "ID": id, "ProductInstanceId": null,
            "PartnerId": null, "CallbackObjectRecId": 12, "Entity": entity.to_string(),
            "Metadata": {"key_url": key_url}
        });
        serde_json::to_vec(&body).unwrap()
    }
}
