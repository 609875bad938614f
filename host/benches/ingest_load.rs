//! Sustained ingest of signed ConnectWise callbacks over loopback.
//!
//! Starts the real `plugboard` binary (release build) as its own process,
//! once on the durable SQLite store (`synchronous=FULL`) and once on a
//! PostgreSQL database of a throwaway cluster started by the benchmark
//! (default durability: `fsync` and `synchronous_commit` on), with a fake ConnectWise serving the
//! signing key over HTTPS, and a keep-alive load generator posting distinct,
//! realistic (~1.5 KB) signed callbacks; the key is fetched once and
//! cached. Delivery is paused for the run (the receiver answered 410), so
//! the figure is ingest alone: verify, map, store durably, answer. The same
//! generator then runs against a minimal hyper "200 OK" server, the ceiling
//! of this generator on this machine. The figures are printed side by side
//! with the CPU the sidecar and the database server used.
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
use load::scenario::{paused_sidecar, shots, stores};
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
        let mut lines = Vec::new();
        let mut body_len = 0;
        for (name, database) in stores() {
            let url = database.as_ref().map(|(url, _)| url.as_str());
            let (sidecar, id) = paused_sidecar(&cw, &ca, &receiver, url).await;
            let shots = Arc::new(shots(&cw, id, requests, "bench"));
            body_len = shots[0].body.len();
            let db_cpu = || database.as_ref().map_or(0.0, |(_, c)| c.cpu_seconds());
            let (cpu_before, db_before) = (sidecar.cpu_seconds(), db_cpu());
            let ingest = load::run(sidecar.addr, shots, Options::flat_out(connections)).await;
            let (cpu, db) = (sidecar.cpu_seconds() - cpu_before, db_cpu() - db_before);
            assert_eq!(ingest.failed, 0, "every webhook must be accepted ({name})");
            let secs = ingest.elapsed.as_secs_f64();
            let per = |c: f64| c * 1e6 / ingest.ok.max(1) as f64;
            lines.push((
                ingest.line(&format!("plugboard on {name}")),
                format!(
                    "  CPU: sidecar {:.2} cores ({:.0} us/webhook), database {:.2} cores ({:.0} us/webhook)",
                    cpu / secs,
                    per(cpu),
                    db / secs,
                    per(db)
                ),
                ingest.rate(),
            ));
        }
        let bare_addr = load::bare_hyper_server().await;
        let shots = Arc::new(shots(&cw, 1, requests, "bare"));
        let bare = load::run(bare_addr, shots, Options::flat_out(connections)).await;

        println!("\ningest_load: {connections} keep-alive connections, {body_len}-byte signed callbacks, durable stores");
        for (line, cpu, rate) in &lines {
            println!("{line}");
            println!("{cpu}");
            println!("  ratio to bare hyper: {:.2}", rate / bare.rate());
        }
        println!("{}", bare.line("bare hyper 200 OK"));
        println!("signing key fetches by the sidecars: {}", cw.key_fetches());
    });
}
