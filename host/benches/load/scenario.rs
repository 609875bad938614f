//! The benchmark scenario shared by the loopback benchmarks: a sidecar with
//! one instance whose delivery is paused — of the Rust ConnectWise element,
//! or of the JavaScript GitHub or Python Shopify element — and distinct
//! signed webhooks for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::connectwise::FakeConnectWise;
use super::receiver::BenchReceiver;
use super::sidecar::Sidecar;
use super::tls::TestCa;
use super::{Options, Shot};

/// Distinct signed callbacks for instance `id`.
pub fn shots(cw: &FakeConnectWise, id: i64, n: usize, tag: &str) -> Vec<Shot> {
    let path = format!(
        "/events/connectwise/{}",
        base64::engine::general_purpose::STANDARD.encode(id.to_string())
    );
    let kinds = ["ticket", "company", "contact"];
    let actions = ["added", "updated", "deleted"];
    (0..n)
        .map(|i| {
            let body = cw.callback(
                &format!("{tag}-{i:08}"),
                actions[i % 3],
                kinds[i % 3],
                i as u64,
                &cw.key_url(),
            );
            Shot {
                path: path.clone(),
                headers: vec![("x-content-signature".into(), cw.sign(&body))],
                body: Bytes::from(body),
            }
        })
        .collect()
}

/// The stores a benchmark compares: the embedded SQLite file, and a fresh
/// database of a throwaway PostgreSQL cluster (default durability: `fsync`
/// and `synchronous_commit` on) with that cluster, for its CPU use.
/// `LOAD_STORES` (default `sqlite,postgresql`) picks among them.
pub fn stores() -> Vec<(&'static str, Database)> {
    let wanted = std::env::var("LOAD_STORES")
        .unwrap_or_else(|_| "sqlite,postgresql".into())
        .to_lowercase();
    let mut stores = Vec::new();
    if wanted.contains("sqlite") {
        stores.push(("SQLite", None));
    }
    if wanted.contains("postgres") {
        let cluster = throwaway_postgres::shared();
        let name = cluster.create_database_named();
        let url = cluster.url(&name);
        stores.push(("PostgreSQL", Some(PgDatabase { name, url, cluster })));
    }
    assert!(
        !stores.is_empty(),
        "LOAD_STORES={wanted:?} names no store: use sqlite, postgresql or both, comma-separated"
    );
    stores
}

/// A benchmark's PostgreSQL database: a fresh one on the throwaway cluster.
pub struct PgDatabase {
    /// Its name on the cluster.
    pub name: String,
    /// Its URL, for the sidecar's `database_url`.
    pub url: String,
    /// The cluster, for its CPU use and statement statistics.
    pub cluster: &'static throwaway_postgres::Cluster,
}

/// What a benchmark's store is: PostgreSQL, or (`None`) the SQLite file.
pub type Database = Option<PgDatabase>;

/// Starts a phase of statement statistics on `database`
/// (`THROWAWAY_PG_STATEMENTS=1`; otherwise nothing).
pub fn statements_reset(database: &Database) {
    if let Some(db) = database {
        db.cluster.statements_reset(&db.name);
    }
}

/// Prints the statements that took `database` the most time since
/// [`statements_reset`], under `heading` (`THROWAWAY_PG_STATEMENTS=1`;
/// otherwise nothing).
pub fn print_statements(database: &Database, heading: &str) {
    if let Some(db) = database {
        if let Some(report) = db.cluster.statements_report(&db.name, 6) {
            print!("  database statements, {heading}, by total time:\n{report}");
        }
    }
}

/// A sidecar with one ConnectWise instance whose delivery is paused, its
/// store in `database_url` (PostgreSQL) or, if `None`, the SQLite file in
/// its data folder.
pub async fn paused_sidecar(
    cw: &FakeConnectWise,
    ca: &TestCa,
    receiver: &BenchReceiver,
    database_url: Option<&str>,
) -> (Sidecar, i64) {
    let mut env = vec![
        (
            "PLUGBOARD_OUTBOUND_CA_FILE",
            ca.ca_file.display().to_string(),
        ),
        ("PLUGBOARD_PLUGIN_FETCH_PORTS", cw.addr.port().to_string()),
    ];
    if let Some(url) = database_url {
        env.push(("PLUGBOARD_DATABASE_URL", url.to_string()));
    }
    let sidecar = Sidecar::start(&env).await;
    let id = sidecar
        .connectwise_instance(&cw.server_url(), &receiver.url())
        .await;
    let warm = shots(cw, id, 200, "warm");
    pause_delivery(&sidecar, id, receiver, warm).await;
    (sidecar, id)
}

/// Has the sidecar pause `id`'s delivery: `warm` is ingested and its
/// events are refused by `receiver` with 410 until the instance pauses.
async fn pause_delivery(sidecar: &Sidecar, id: i64, receiver: &BenchReceiver, warm: Vec<Shot>) {
    receiver.answer(410);
    super::run(sidecar.addr, Arc::new(warm), Options::flat_out(8)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sidecar
        .api(reqwest::Method::GET, &format!("/instances/{id}"), None)
        .await["deliveryPaused"]
        .is_null()
    {
        assert!(Instant::now() < deadline, "delivery did not pause");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A bundled element written in another language than Rust, with signed
/// deliveries of about 1 KB as its vendor sends them.
#[derive(Clone, Copy, Debug)]
pub enum Language {
    /// The GitHub element, in JavaScript: `issues` deliveries.
    JavaScript,
    /// The Shopify element, in Python: `orders/updated` deliveries.
    Python,
}

/// The webhook secret of the benchmark's GitHub and Shopify instances.
const WEBHOOK_SECRET: &str = "bench-webhook-secret";

impl Language {
    /// The element key (and plugin file name).
    pub fn element(self) -> &'static str {
        match self {
            Self::JavaScript => "github",
            Self::Python => "shopify",
        }
    }

    /// Distinct signed deliveries for instance `id`.
    pub fn shots(self, id: i64, n: usize, tag: &str) -> Vec<Shot> {
        let path = format!(
            "/events/{}/{}",
            self.element(),
            base64::engine::general_purpose::STANDARD.encode(id.to_string())
        );
        (0..n)
            .map(|i| {
                let (body, headers) = self.delivery(&format!("{tag}-{i:08}"), i as u64);
                Shot {
                    path: path.clone(),
                    headers,
                    body: Bytes::from(body),
                }
            })
            .collect()
    }

    fn delivery(self, tag: &str, n: u64) -> (Vec<u8>, Vec<(String, String)>) {
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        match self {
            Self::JavaScript => {
                let action = ["opened", "edited", "closed"][(n % 3) as usize];
                let body = serde_json::to_vec(&json!({
                    "action": action,
                    "issue": {
                        "id": 1_000_000 + n, "number": n, "title": format!("Found a bug {tag}"),
                        "state": "open", "locked": false,
                        "body": "The printer in the east wing is on fire again; see the attached log.",
                        "user": {"login": "octocat", "id": 1, "type": "User", "site_admin": false},
                        "labels": [{"id": 208045946, "name": "bug", "color": "f29513", "default": true}],
                        "comments": 3, "created_at": "2024-05-01T12:00:00Z",
                        "updated_at": "2024-05-01T12:34:56Z",
                        "url": format!("https://api.github.com/repos/octocat/Hello-World/issues/{n}"),
                        "html_url": format!("https://github.com/octocat/Hello-World/issues/{n}")
                    },
                    "repository": {
                        "id": 1296269, "full_name": "octocat/Hello-World", "private": false,
                        "owner": {"login": "octocat", "id": 1, "type": "User"},
                        "html_url": "https://github.com/octocat/Hello-World", "default_branch": "main"
                    },
                    "sender": {"login": "octocat", "id": 1, "type": "User", "site_admin": false}
                }))
                .unwrap();
                mac.update(&body);
                let signature = hex::encode(mac.finalize().into_bytes());
                let headers = vec![
                    ("x-github-event".into(), "issues".into()),
                    ("x-github-delivery".into(), format!("delivery-{tag}")),
                    ("x-hub-signature-256".into(), format!("sha256={signature}")),
                ];
                (body, headers)
            }
            Self::Python => {
                let body = serde_json::to_vec(&json!({
                    "id": 820_982_911_946_154_508_u64 + n, "email": "jon@example.com",
                    "name": format!("#{n}"), "created_at": "2024-05-01T08:00:00-04:00",
                    "updated_at": "2024-05-01T08:05:00-04:00", "currency": "USD",
                    "financial_status": "paid", "total_price": "403.00",
                    "customer": {"id": 115310627314723954_u64, "email": "john@example.com",
                        "first_name": "John", "last_name": "Smith"},
                    "line_items": [
                        {"id": 866550311766439020_u64, "title": "IPod Nano - 8GB", "quantity": 1,
                            "price": "199.00", "sku": "IPOD2008PINK"},
                        {"id": 141249953214522974_u64, "title": "IPod Nano - 8GB", "quantity": 1,
                            "price": "199.00", "sku": "IPOD2008BLACK"}
                    ],
                    "shipping_address": {"address1": "123 Shipping Street", "city": "Shippington",
                        "country": "US", "zip": "40003"},
                    "admin_graphql_api_id": format!("gid://shopify/Order/{n}")
                }))
                .unwrap();
                mac.update(&body);
                let signature =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                let headers = vec![
                    ("x-shopify-topic".into(), "orders/updated".into()),
                    ("x-shopify-webhook-id".into(), format!("webhook-{tag}")),
                    ("x-shopify-hmac-sha256".into(), signature),
                ];
                (body, headers)
            }
        }
    }

    /// A sidecar (SQLite store) with one instance of this language's
    /// element whose delivery is paused; `env` adds settings.
    pub async fn paused_sidecar(
        self,
        receiver: &BenchReceiver,
        env: &[(&str, String)],
    ) -> (Sidecar, i64) {
        let element = self.element();
        let sidecar = Sidecar::start_with(&[element], env).await;
        let secret = format!("{element}.webhook.secret");
        let configuration = json!({ secret: WEBHOOK_SECRET });
        let id = sidecar
            .instance(element, configuration, &receiver.url())
            .await;
        pause_delivery(&sidecar, id, receiver, self.shots(id, 200, "warm")).await;
        (sidecar, id)
    }
}
