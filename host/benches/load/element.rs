//! Elements called in-process, without the server, for the benchmarks that
//! compare components (`languages`, `host_helpers`): a built plugin read
//! from `plugins/`, compiled cold into a runtime configured as the host
//! configures it (defaults, compiled artifacts served from a cache folder,
//! here an empty one), a signed delivery for it, and one webhook call timed
//! by criterion in a fresh instance and, for elements that declare
//! themselves stateless, in a warm one. Every timed call is first checked
//! to be accepted with the expected events, so a benchmark never times a
//! refusal.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use hmac::{Hmac, Mac};
use plugboard::runtime::{
    CallLabel, ElementPlugin, FetchScope, Header, HttpRequest, Runtime, RuntimeConfig,
    WebhookOutcome,
};
use sha2::Sha256;
use tokio::runtime::Runtime as Executor;

/// The webhook secret of every benchmark delivery.
pub const SECRET: &str = "bench-webhook-secret";

/// HMAC-SHA256 of `body` under [`SECRET`], as vendors sign deliveries.
pub fn hmac_sha256(body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// A `POST` delivery to `element`'s inbound path.
pub fn request(element: &str, headers: Vec<(&str, String)>, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: format!("/events/{element}/MQ=="),
        query: String::new(),
        headers: headers
            .into_iter()
            .map(|(name, value)| Header {
                name: name.into(),
                value,
            })
            .collect(),
        body,
    }
}

/// One element under test: the built plugin's folder and file name, an
/// instance configuration and a delivery it accepts.
pub struct Subject {
    /// What the row is called in the output (a language, a variant).
    pub label: &'static str,
    /// Folder of the built plugin under `plugins/` (`dist`, `dist-test`).
    pub dir: &'static str,
    /// The plugin's file name without `.wasm` (the element key).
    pub element: &'static str,
    /// The instance configuration.
    pub config: Vec<(String, String)>,
    /// The delivery.
    pub request: HttpRequest,
}

impl Subject {
    /// The bytes of the built plugin.
    pub fn wasm(&self) -> Vec<u8> {
        let path = format!(
            "{}/../plugins/{}/{}.wasm",
            env!("CARGO_MANIFEST_DIR"),
            self.dir,
            self.element
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}; run plugins/build.sh first"))
    }

    /// One webhook call in the instance `label` picks, checked to be
    /// accepted with exactly one event.
    pub fn call(&self, rt: &Executor, plugin: &ElementPlugin, label: &CallLabel) {
        let outcome = rt
            .block_on(plugin.webhook(
                label.clone(),
                FetchScope::default(),
                &self.config,
                &self.request,
            ))
            .unwrap_or_else(|e| panic!("{}: the call failed: {e}", self.element));
        assert!(
            matches!(outcome, WebhookOutcome::Accepted(ref e) if e.events.len() == 1),
            "{}: expected one accepted event",
            self.element
        );
    }
}

/// A plugin compiled cold, and the runtime it was loaded into.
pub struct Loaded {
    /// The runtime, configured as the host configures it.
    pub runtime: Runtime,
    /// The plugin, ready for calls.
    pub plugin: ElementPlugin,
    /// The component's size in bytes.
    pub size: usize,
    /// Median time of `Runtime::load` (compile, link and `describe`) with
    /// no compiled artifact to reuse.
    pub cold: Duration,
    _cache: tempfile::TempDir,
}

/// Loads `wasm` `rounds` times (at least once), each time into a new
/// runtime whose artifact cache folder is empty, so every load compiles;
/// keeps the last runtime and plugin and the median load time.
pub fn load_cold(rt: &Executor, wasm: &[u8], rounds: usize) -> Loaded {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..rounds.max(1) {
        drop(last.take()); // one pooled runtime at a time
        let cache = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert!(
            runtime.is_pooled(),
            "benchmark expects the pooling allocator"
        );
        let started = Instant::now();
        let plugin = rt.block_on(runtime.load(wasm)).unwrap();
        times.push(started.elapsed());
        last = Some((runtime, plugin, cache));
    }
    times.sort_unstable();
    let (runtime, plugin, cache) = last.unwrap();
    Loaded {
        runtime,
        plugin,
        size: wasm.len(),
        cold: times[times.len() / 2],
        _cache: cache,
    }
}

/// The instances a call of `subject` may run in: a fresh one (a call for
/// no instance always gets a fresh one) and, when the element declares
/// itself stateless, a warm one kept for an instance.
pub fn call_kinds(plugin: &ElementPlugin, subject: &Subject) -> Vec<(&'static str, CallLabel)> {
    let mut kinds = vec![("fresh", CallLabel::default())];
    if plugin.description().stateless {
        let warm = CallLabel {
            element: subject.element.into(),
            instance: Some(1),
        };
        kinds.push(("warm", warm));
    }
    kinds
}

/// Times one call of `subject` (criterion) in each instance kind, as
/// `<label>_<element>_<kind>`; `after` runs after each kind's benchmark.
pub fn bench_calls(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Executor,
    loaded: &Loaded,
    subject: &Subject,
    mut after: impl FnMut(&str, &CallLabel),
) {
    for (kind, label) in call_kinds(&loaded.plugin, subject) {
        subject.call(rt, &loaded.plugin, &label);
        let name = format!("{}_{}_{kind}", subject.label, subject.element);
        group.bench_function(name, |b| {
            b.iter(|| subject.call(rt, &loaded.plugin, &label))
        });
        after(kind, &label);
    }
}
