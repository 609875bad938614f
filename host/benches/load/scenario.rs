//! The benchmark scenario shared by the loopback benchmarks: a sidecar with
//! one ConnectWise instance whose delivery is paused, and distinct signed
//! callbacks for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;

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
pub fn stores() -> Vec<(
    &'static str,
    Option<(String, &'static throwaway_postgres::Cluster)>,
)> {
    let cluster = throwaway_postgres::shared();
    vec![
        ("SQLite", None),
        ("PostgreSQL", Some((cluster.create_database(), cluster))),
    ]
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
    receiver.answer(410);
    let warm = shots(cw, id, 200, "warm");
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
    (sidecar, id)
}
