//! A fake ConnectWise Manage for the runnable demo (`examples/demo.sh`).
//!
//! `keys --dir DIR` makes a throwaway certificate authority (DIR/ca.pem, for
//! plugboard's `outbound_ca_file`), serves the callback signing key over
//! HTTPS on 127.0.0.1 as ConnectWise's `Metadata.key_url` does, writes its
//! port to DIR/vendor.port and runs until killed.
//!
//! `send --to URL --port PORT` posts callbacks to plugboard's webhook URL as
//! ConnectWise would: `x-content-signature` = base64(HMAC-SHA256(key =
//! SHA-256 of the signing key, raw body)), `Entity` as a JSON string.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use hmac::{Hmac, Mac};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;

/// The signing key this fake vendor hands out.
const SIGNING_KEY: &str = "demo-connectwise-signing-key";
/// Where the key is served, as on ConnectWise's cloud.
const KEY_PATH: &str = "/v4_6_release/system/callbackkey/index.rails";

#[derive(Parser)]
#[command(about = "A fake ConnectWise Manage for the plugboard demo")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the signing key over HTTPS with a throwaway CA.
    Keys {
        /// Folder for ca.pem and vendor.port.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Send signed callbacks to plugboard.
    Send {
        /// plugboard's webhook URL for the instance.
        #[arg(long)]
        to: String,
        /// Port of the key server (`keys` wrote it to vendor.port).
        #[arg(long)]
        port: u16,
        /// How many tickets to add, update and delete.
        #[arg(long, default_value_t = 2)]
        count: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Keys { dir } => serve_keys(dir).await,
        Command::Send { to, port, count } => send(&to, port, count).await,
    }
}

/// A CA and a `localhost` / `127.0.0.1` certificate it signed.
fn throwaway_tls(dir: &std::path::Path) -> anyhow::Result<rustls::ServerConfig> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "plugboard demo CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?
        .signed_by(&leaf_key, &ca_cert, &ca_key)?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )?)
}

async fn serve_keys(dir: PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(throwaway_tls(&dir)?));
    let router = axum::Router::new().route(
        KEY_PATH,
        axum::routing::get(|| async {
            println!("vendor: signing key fetched");
            axum::Json(json!({"id": 1, "signing_key": SIGNING_KEY}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    std::fs::write(dir.join("vendor.port"), port.to_string())?;
    println!("vendor: serving the signing key on https://localhost:{port}{KEY_PATH}");
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}

/// A callback body as ConnectWise sends it.
fn callback(message_id: &str, action: &str, id: u64, key_url: &str) -> Vec<u8> {
    let entity = json!({
        "id": id, "summary": format!("Printer {id} on fire"), "recordType": "ServiceTicket",
        "status": {"id": 16, "name": "New"}, "company": {"id": 250, "identifier": "ACME"},
        "_info": {"lastUpdated": "2024-05-01T12:34:56Z", "dateEntered": "2024-05-01T12:00:00Z"}
    });
    let body = json!({
        "MessageId": message_id, "FromUrl": "https://api-na.myconnectwise.net", "CompanyId": "acme",
        "MemberId": "jdoe", "Action": action, "Type": "ticket", "ID": id,
        "CallbackObjectRecId": 12, "Entity": entity.to_string(), "Metadata": {"key_url": key_url}
    });
    serde_json::to_vec(&body).expect("JSON")
}

/// `x-content-signature` of a body.
fn sign(body: &[u8]) -> String {
    let key = Sha256::digest(SIGNING_KEY.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn send(to: &str, port: u16, count: u64) -> anyhow::Result<()> {
    let key_url = format!("https://localhost:{port}{KEY_PATH}?id=1");
    let client = reqwest::Client::new();
    let run = std::process::id();
    for id in 1..=count {
        for action in ["added", "updated", "deleted"] {
            let body = callback(
                &format!("demo-{run}-{id}-{action}"),
                action,
                1000 + id,
                &key_url,
            );
            let answer = client
                .post(to)
                .header("content-type", "application/json")
                .header("x-content-signature", sign(&body))
                .body(body)
                .send()
                .await?;
            let status = answer.status();
            println!(
                "vendor: ticket {} {action} -> {status} {}",
                1000 + id,
                answer.text().await?
            );
        }
    }
    let forged = callback(&format!("demo-{run}-forged"), "added", 666, &key_url);
    let answer = client
        .post(to)
        .header("x-content-signature", "Zm9yZ2Vk")
        .body(forged)
        .send()
        .await?;
    println!("vendor: a forged callback -> {}", answer.status());
    Ok(())
}
