//! The real binary on a PostgreSQL server that takes TCP connections only
//! over TLS, with a certificate issued by a private CA: with
//! `sslmode=verify-full&sslrootcert=<that CA>` it starts, stores a webhook
//! and delivers it, over TLS connections; given another CA it stops at
//! start-up saying the server's certificate was refused (while
//! `sslmode=require` without a CA encrypts without checking, as libpq); given a CA file
//! that does not exist it stops naming `database_url` and the path.

use std::time::Duration;

use crate::support::plugin_bytes;
use crate::support::process::{probe_instance, probe_webhook, Binary, Process};
use crate::support::receiver::Receiver;
use crate::support::tls::TestCa;
use crate::support::wait_until;

/// `plugboard serve` with the probe element on the database `url`.
fn serve(dirs: &(tempfile::TempDir, tempfile::TempDir), url: &str) -> Process {
    std::fs::write(dirs.0.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    Binary::serve(dirs.0.path(), dirs.1.path())
        .env("PLUGBOARD_DATABASE_URL", url)
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1")
        .spawn()
}

fn dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap())
}

/// Starts the binary on `url`, which it must refuse at start-up; returns
/// its log.
async fn refused(url: &str) -> String {
    let dirs = dirs();
    let mut process = serve(&dirs, url);
    let status = process.exited(Duration::from_secs(30)).await;
    assert!(!status.success(), "{}", process.log());
    process.log()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_with_the_operators_ca_connects_and_another_ca_is_refused() {
    let ca = TestCa::new();
    let (cert, key) = (ca.server_cert_pem.clone(), ca.server_key_pem.clone());
    let cluster = tokio::task::spawn_blocking(move || {
        throwaway_postgres::Cluster::start_with_tls(&cert, &key)
    })
    .await
    .unwrap();
    let name = cluster.create_database_named();
    let tls_url = |ca_file: &std::path::Path| {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            cluster.tcp_url(&name),
            ca_file.display()
        )
    };

    // The operator's CA: the host starts, stores and delivers.
    let receiver = Receiver::start().await;
    let folders = dirs();
    let host = serve(&folders, &tls_url(&ca.ca_file));
    host.wait_ready().await;
    let id = probe_instance(&host.base(), &receiver.url()).await;
    assert_eq!(probe_webhook(&host.base(), id).await, 200);
    wait_until("the delivery", Duration::from_secs(20), || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
    // Every connection the host has open came over TCP with TLS (the
    // server admits no other), and there are some.
    let sessions = cluster.psql(
        &name,
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = current_database() AND a.client_addr IS NOT NULL",
    );
    let (over_tls, all) = sessions.split_once('|').unwrap();
    assert!(
        all.parse::<u32>().unwrap() > 0,
        "no TCP connection: {sessions}"
    );
    assert_eq!(over_tls, all, "every TCP connection uses TLS");
    drop(host);

    // `require` without `sslrootcert` encrypts without checking the
    // certificate, as libpq: the private CA's certificate is accepted.
    let folders = dirs();
    let unchecked = serve(
        &folders,
        &format!("{}?sslmode=require", cluster.tcp_url(&name)),
    );
    unchecked.wait_ready().await;
    drop(unchecked);

    // A CA that did not issue the server's certificate: refused at start-up.
    let other = TestCa::new();
    let log = refused(&tls_url(&other.ca_file)).await;
    assert!(
        log.contains("sslmode=verify-full") && log.contains("invalid peer certificate"),
        "{log}"
    );

    // A CA file that is not there: refused naming the setting and the path.
    let log = refused(&tls_url(std::path::Path::new("/nonexistent/db-ca.pem"))).await;
    assert!(
        log.contains("database_url: sslrootcert /nonexistent/db-ca.pem: cannot open"),
        "{log}"
    );
}
