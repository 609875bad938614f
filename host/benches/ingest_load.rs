//! Sustained ingest of signed webhooks over loopback, per plugin language.
//!
//! Starts the real `plugboard` binary (release build) as its own process:
//! with the Rust ConnectWise element once on the durable SQLite store
//! (`synchronous=FULL`) and once on a
//! PostgreSQL database of a throwaway cluster started by the benchmark
//! (default durability: `fsync` and `synchronous_commit` on), with a fake ConnectWise serving the
//! signing key over HTTPS, and a keep-alive load generator posting distinct,
//! realistic (~1.5 KB) signed callbacks; the key is fetched once and
//! cached; then on SQLite with the JavaScript GitHub element (signed `issues`
//! deliveries) and with the Python Shopify element (signed `orders/updated`
//! deliveries), about 1 KB each — each once with a fresh instance per call
//! (`warm_instances = 0`) and once with warm instances (the default). Delivery is paused for the run (the receiver answered 410), so
//! the figure is ingest alone: verify, map, store durably, answer. The same
//! generator then runs against a minimal hyper "200 OK" server, the ceiling
//! of this generator on this machine. The figures are printed side by side
//! with the CPU the sidecar and the database server used, and for SQLite
//! how much the data folder grew per webhook.
//!
//! Run: `cargo bench -p plugboard --bench ingest_load` (after
//! `plugins/build.sh`). `LOAD_CONNECTIONS` (default 64) and `LOAD_REQUESTS`
//! (default 150000) tune it; `LOAD_LANGUAGES` (default
//! `rust,javascript,python`) picks the elements measured, `LOAD_STORES`
//! (default `sqlite,postgresql`) the stores of the Rust element's runs, and
//! `LOAD_REQUESTS_INTERPRETED` (default 10000, at most `LOAD_REQUESTS`) is
//! the count for the JavaScript and Python elements, and
//! `LOAD_INSTANCES` (default `fresh,warm`) whether they run with fresh
//! instances, warm ones or both. Under `cargo test` (no `--bench` argument)
//! it runs a short smoke round of 2,000 requests, checking the harness
//! works.

#![allow(missing_docs)]

#[allow(dead_code)] // each benchmark uses part of the shared harness
mod load;

use std::sync::Arc;

use load::connectwise::FakeConnectWise;
use load::receiver::BenchReceiver;
use load::scenario::{paused_sidecar, print_statements, shots, statements_reset, stores, Language};
use load::sidecar::Sidecar;
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
        // JavaScript and Python elements take milliseconds per call: the
        // full run would last many minutes at the Rust element's count.
        let interpreted = env_usize("LOAD_REQUESTS_INTERPRETED", requests.min(10_000));
        let ca = TestCa::new();
        let cw = FakeConnectWise::start(&ca).await;
        let receiver = BenchReceiver::start(410).await;
        let languages = std::env::var("LOAD_LANGUAGES")
            .unwrap_or_else(|_| "rust,javascript,python".into())
            .to_lowercase();
        let kinds: Vec<String> = std::env::var("LOAD_INSTANCES")
            .unwrap_or_else(|_| "fresh,warm".into())
            .split(',')
            .map(|kind| kind.trim().to_lowercase())
            .collect();
        for kind in &kinds {
            assert!(
                kind == "fresh" || kind == "warm",
                "LOAD_INSTANCES names `fresh` and `warm`, not `{kind}`"
            );
        }
        let mut runs = Vec::new();
        let rust_stores = if languages.contains("rust") {
            stores()
        } else {
            Vec::new()
        };
        for (name, database) in rust_stores {
            let url = database.as_ref().map(|db| db.url.as_str());
            let (sidecar, id) = paused_sidecar(&cw, &ca, &receiver, url).await;
            let shots = Arc::new(shots(&cw, id, requests, "bench"));
            let db_cpu = || database.as_ref().map_or(0.0, |db| db.cluster.cpu_seconds());
            let name = format!("Rust ConnectWise, {name}");
            statements_reset(&database);
            runs.push(measure(&name, &sidecar, shots, connections, db_cpu).await);
            print_statements(&database, &name);
        }
        for language in [Language::JavaScript, Language::Python]
            .into_iter()
            .filter(|l| languages.contains(&format!("{l:?}").to_lowercase()))
        {
            // Fresh instances for every call (as before warm instances, and
            // as for an element that is not stateless), then warm ones.
            for (instances, warm) in [("fresh instances", "0"), ("warm instances", "16")]
                .into_iter()
                .filter(|(name, _)| kinds.iter().any(|kind| name.starts_with(kind.as_str())))
            {
                let env = [("PLUGBOARD_WARM_INSTANCES", warm.to_string())];
                let (sidecar, id) = language.paused_sidecar(&receiver, &env).await;
                let shots = Arc::new(language.shots(id, interpreted, "bench"));
                let name = format!("{language:?} {}, SQLite, {instances}", language.element());
                runs.push(measure(&name, &sidecar, shots, connections, || 0.0).await);
            }
        }
        let bare_addr = load::bare_hyper_server().await;
        let shots = Arc::new(shots(&cw, 1, requests, "bare"));
        let bare = load::run(bare_addr, shots, Options::flat_out(connections)).await;

        println!("\ningest_load: {connections} keep-alive connections, signed webhooks of about 1-1.5 KB, durable stores");
        for run in &runs {
            println!("{}", run.line);
            println!("{}", run.cpu);
            println!("  ratio to bare hyper: {:.2}", run.rate / bare.rate());
        }
        println!("{}", bare.line("bare hyper 200 OK"));
        println!("signing key fetches by the sidecars: {}", cw.key_fetches());
    });
}

/// What one sidecar run printed.
struct Run {
    line: String,
    cpu: String,
    rate: f64,
}

/// Posts `shots` to `sidecar` flat out and measures rate, latency and the
/// CPU of the sidecar and (`db_cpu`, seconds so far) its database server.
async fn measure(
    name: &str,
    sidecar: &Sidecar,
    shots: Arc<Vec<load::Shot>>,
    connections: usize,
    db_cpu: impl Fn() -> f64,
) -> Run {
    let body_len = shots[0].body.len();
    let (cpu_before, db_before) = (sidecar.cpu_seconds(), db_cpu());
    let (file_before, _) = sidecar.store_bytes();
    let written_before = sidecar.written_bytes();
    let instances = "plugboard_plugin_instances_total";
    let warm_before = sidecar.metric(instances, "instance=\"warm\"").await;
    let fresh_before = sidecar.metric(instances, "instance=\"fresh\"").await;
    let ingest = load::run(sidecar.addr, shots, Options::flat_out(connections)).await;
    let (cpu, db) = (sidecar.cpu_seconds() - cpu_before, db_cpu() - db_before);
    let (file_after, wal) = sidecar.store_bytes();
    let written = sidecar.written_bytes().saturating_sub(written_before);
    let warm = sidecar.metric(instances, "instance=\"warm\"").await - warm_before;
    let fresh = sidecar.metric(instances, "instance=\"fresh\"").await - fresh_before;
    assert_eq!(ingest.failed, 0, "every webhook must be accepted ({name})");
    let secs = ingest.elapsed.as_secs_f64();
    let per = |c: f64| c * 1e6 / ingest.ok.max(1) as f64;
    Run {
        line: ingest.line(name),
        cpu: format!(
            "  {body_len}-byte bodies; CPU: sidecar {:.2} cores ({:.0} us/webhook), database {:.2} cores ({:.0} us/webhook)\n  plugin calls in warm instances {warm:.0}, fresh {fresh:.0}{}",
            cpu / secs,
            per(cpu),
            db / secs,
            per(db),
            if file_after > 0 {
                format!(
                    "; SQLite file +{:.1} KB/webhook, write-ahead log {:.1} MB, written to disk {:.1} KB/webhook",
                    file_after.saturating_sub(file_before) as f64 / 1e3 / ingest.ok.max(1) as f64,
                    wal as f64 / 1e6,
                    written as f64 / 1e3 / ingest.ok.max(1) as f64
                )
            } else {
                String::new()
            }
        ),
        rate: ingest.rate(),
    }
}
