//! Helpers shared by the end-to-end tests: plugin files, waiting with a
//! deadline, and request builders.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// The database the store of a host with data folder `data` lives in: with
/// `PLUGBOARD_TEST_STORE=postgres`, a fresh database of this test process's
/// throwaway PostgreSQL cluster, made on first use and remembered in the
/// data folder (so a restarted host finds its data again); unset or
/// `sqlite`, `None`: the embedded SQLite file in the data folder.
pub fn test_database(data: &std::path::Path) -> Option<String> {
    match std::env::var("PLUGBOARD_TEST_STORE").as_deref() {
        Err(_) | Ok("" | "sqlite") => None,
        Ok("postgres") => {
            let file = data.join("test-database-url");
            if let Ok(url) = std::fs::read_to_string(&file) {
                return Some(url);
            }
            let url = throwaway_postgres::shared().create_database();
            std::fs::create_dir_all(data).unwrap();
            std::fs::write(&file, &url).unwrap();
            Some(url)
        }
        Ok(other) => panic!("PLUGBOARD_TEST_STORE={other}: use sqlite or postgres"),
    }
}

/// The Cloud Elements signature of `body` under `key`: `sha256=<base64
/// HMAC-SHA256>` (one entry of an `Elements-Webhook-Signature` header).
pub fn elements_signature(key: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Bytes of a built plugin: bundled (`plugins/dist`) or test-only
/// (`plugins/dist-test`).
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    for dir in ["plugins/dist", "plugins/dist-test"] {
        let path = repo_root().join(dir).join(format!("{name}.wasm"));
        if let Ok(bytes) = std::fs::read(&path) {
            return bytes;
        }
    }
    panic!("plugin {name}.wasm is not built; run plugins/build.sh first");
}

/// The same component with a custom section appended: a different file
/// (different hash) with identical behaviour.
pub fn variant(wasm: &[u8], n: u32) -> Vec<u8> {
    let name = b"plugboard-test-variant";
    let payload = n.to_le_bytes();
    let mut section = Vec::new();
    leb128(&mut section, name.len() as u64);
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, section.len() as u64);
    out.extend_from_slice(&section);
    out
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, then rename).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `check` until it returns `Some`, or panics after `deadline` with `what`.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub mod connectwise;
pub mod connectwise_callbacks;
pub mod connectwise_rest;
pub mod host;
pub mod process;
pub mod receiver;
pub mod replicas;
pub mod round_robin;
pub mod scrape;
pub mod tls;
