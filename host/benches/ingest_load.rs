//! Sustained ingest of signed ConnectWise callbacks over loopback.
//!
//! Starts the real `plugboard` binary (release build, durable SQLite store,
//! `synchronous=FULL`) as its own process, a fake ConnectWise serving the
//! signing key over HTTPS, and a keep-alive load generator posting distinct,
//! realistic (~1.5 KB) signed callbacks; the key is fetched once and
//! cached. Delivery is paused for the run (the receiver answered 410), so
//! the figure is ingest alone: verify, map, store durably, answer. The same
//! generator then runs against a minimal hyper "200 OK" server, the ceiling
//! of this generator on this machine.
//!
//! Run: `cargo bench -p plugboard --bench ingest_load` (after
//! `plugins/build.sh`). `LOAD_CONNECTIONS` (default 64) and `LOAD_REQUESTS`
//! (default 150000) tune it. Under `cargo test` (no `--bench` argument) it
//! runs a short smoke round of 2,000 requests, checking the harness works.

#![allow(missing_docs)]

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::sync::Arc;

use load::connectwise::FakeConnectWise;
use load::receiver::BenchReceiver;
use load::scenario::{paused_sidecar, shots};
use load::tls::TestCa;
use load::{env_usize, full_run, Options};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let connections = env_usize("LOAD_CONNECTIONS", 64);
        let full = full_run();
        let requests = env_usize("LOAD_REQUESTS", if full { 150_000 } else { 2_000 });
        let ca = TestCa::new();
        let cw = FakeConnectWise::start(&ca).await;
        let receiver = BenchReceiver::start(410).await;
        let (sidecar, id) = paused_sidecar(&cw, &ca, &receiver).await;
        let main = Arc::new(shots(&cw, id, requests, "bench"));
        let body_len = main[0].body.len();

        let cpu_before = sidecar.cpu_seconds();
        let ingest = load::run(sidecar.addr, main.clone(), Options::flat_out(connections)).await;
        let cpu = sidecar.cpu_seconds() - cpu_before;
        let bare_addr = load::bare_hyper_server().await;
        let bare = load::run(bare_addr, main, Options::flat_out(connections)).await;

        println!("\ningest_load: {connections} keep-alive connections, {body_len}-byte signed callbacks, durable store");
        println!("{}", ingest.line("plugboard (accepted)"));
        println!("{}", bare.line("bare hyper 200 OK"));
        println!("ratio plugboard / bare hyper: {:.2}", ingest.rate() / bare.rate());
        println!(
            "sidecar CPU: {:.1} s for {:.1} s of load ({:.2} cores, {:.0} us per webhook)",
            cpu,
            ingest.elapsed.as_secs_f64(),
            cpu / ingest.elapsed.as_secs_f64(),
            cpu * 1e6 / ingest.ok.max(1) as f64
        );
        println!("signing key fetches by the sidecar: {}", cw.key_fetches());
        assert_eq!(ingest.failed, 0, "every webhook must be accepted");
    });
}
