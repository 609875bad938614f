//! The sandboxed WebAssembly host that runs element plugins.
//!
//! One [`Runtime`] owns the wasmtime `Engine` and the `Linker`. Each plugin
//! file is compiled once (or loaded from the on-disk cache of compiled
//! artifacts), pre-linked into an `InstancePre` with the bindings of the
//! contract version it exports (every version in
//! [`ContractVersion::SERVED`] is linked), and described. Every call
//! then gets a fresh `Store` and instance — or, for an element that
//! declared itself stateless, a warm one kept from an earlier call of the
//! same element instance ([`warm`]) — with its own CPU deadline and
//! memory cap: a trap, an endless loop or a memory blow-up fails that call
//! only. Calls are asynchronous: they run on a fiber inside the caller's
//! task (no hand-off to another thread for a call of a few microseconds)
//! and, once they have run for a few milliseconds, yield to the executor at
//! every epoch tick, so a long call never holds a worker thread. Nothing
//! outside this module names wasmtime types.
//!
//! # How one call runs
//!
//! 1. **Loading, once per plugin file** ([`Runtime::load`]): the component
//!    is looked up in the compiled-artifact cache (`data/cache`, keyed by
//!    content hash and engine settings); a miss is compiled by a short-lived
//!    child process (`plugboard plugins compile`, [`compiler`]) so the
//!    compiler's memory never stays in the sidecar, then the artifact is
//!    mapped from its file. The contract version is read from the
//!    component's exports ([`contract`]), the component is pre-linked
//!    against that version's bindings ([`bindings`]: one `bindgen!` per
//!    version) and `describe()` is called once; its answer is checked and
//!    kept as the element's [`ElementDescription`] ([`description`]).
//! 2. **Admission and a slot**: the call first takes a place in its
//!    element's concurrency budget and asks the element's circuit breaker
//!    ([`fairness`]): an element whose calls keep trapping or timing out is
//!    refused at once for a cool-down instead of taking CPU from the
//!    others. Then it waits for one of the runtime's slots (shared by every
//!    [`ElementPlugin`]): at most `max_concurrent_calls` run at once; taking
//!    a slot wakes the epoch ticker thread, which sleeps while no call is in
//!    flight.
//! 3. **A warm instance, or a fresh `Store` and instance**: for a stateless
//!    element's call for an instance, a warm instance kept for that
//!    element instance and configuration is taken if there is one
//!    ([`warm`]); its store gets this call's deadline and labels.
//!    Otherwise the instance comes from the pooling
//!    allocator (falling back to on-demand allocation where the address
//!    space cannot be reserved); its memory is reset in place when the slot
//!    is reused, so a call starts from the component's initial state and
//!    sees nothing of earlier calls. The store carries the call's memory
//!    cap ([`limits`], a `ResourceLimiter`) and CPU deadline.
//! 4. **The call** runs on a fiber in the caller's task. After its first
//!    `FIRST_YIELD_TICKS` epoch ticks (`EPOCH_TICK`), and at every tick
//!    after that, the guest yields to the executor and its CPU budget is
//!    checked; time spent waiting to be resumed, and time in host imports
//!    such as `https-get` ([`state`]), is not charged.
//! 5. **The outcome**: a result, a typed element error (a WIT variant), or
//!    a [`CallError`] naming what stopped the guest — trap, timeout, memory
//!    — for that call only; the element's breaker counts the failure. After
//!    a stateless element's successful call the instance is offered back
//!    to its warm instances. Otherwise the store and instance are dropped and the slot's memory is given back:
//!    pages beyond `KEEP_RESIDENT_BYTES` are decommitted, the fiber stack is
//!    zeroed (beyond `KEEP_RESIDENT_STACK_BYTES`, decommitted), and at most
//!    `MAX_UNUSED_WARM_SLOTS` idle slots stay warm, so the set of slots
//!    holding memory is bounded by the peak of calls in flight rather than
//!    growing towards the size of the pool.
//!
//! # Where a JavaScript or Python call's CPU goes
//!
//! Profiled on the 2-core machine (release binary, 64 connections posting
//! signed ~800-byte deliveries, `perf record -F 399 -p`; the machine was
//! shared with other builds, so absolute figures are high and noisy):
//! the GitHub (JavaScript) element cost 3.1–3.9 ms of sidecar CPU per
//! webhook, the Shopify (Python) element 4.8–5.2 ms, against ~1.7 ms and
//! ~3.5 ms for one call at a time in the `languages` benchmark on the same
//! machine at the same moment.
//!
//! - JavaScript: 48% of the sidecar's CPU is guest code (SpiderMonkey
//!   running the element), 27% kernel, 16% the host binary, 9% libc. The
//!   kernel part is the fresh instance: page faults and copy-on-write copies
//!   of image pages (`exc_page_fault`, `copy_mc_enhanced_fast_string`,
//!   `do_wp_page`; ~75 minor faults per webhook), the pooled slot's reset
//!   (`pagemap_scan_pmd_entry` 2%, `unmap_page_range` 1%) and TLB
//!   shoot-downs to the other core (`smp_call_function_many_cond` 1%).
//!   libc `memmove` (3.4%) is mostly the slot reset rewriting dirtied
//!   pages from the image inside `KEEP_RESIDENT_BYTES`; funcref tables are
//!   re-initialised lazily in every instance (`func_loc`, `get_func_ref`,
//!   ~2.5%).
//! - Python: 37% kernel (the same page-fault and reset work, ~240 minor
//!   faults per webhook: CPython dirties more of its heap), 40% host binary,
//!   15% guest code.
//! - Memory images are already copy-on-write: artifacts are served with
//!   `Component::deserialize_file`, so each memory image maps the `.cwasm`
//!   file (`memory_init_cow` is on by default) and no data segment is copied
//!   at instantiation; the componentize-js and componentize-py outputs are
//!   snapshots taken after the module's top level ran, and no engine
//!   start-up work shows in the profile.
//! - It is not contention: with `max_concurrent_calls = 2` (one JavaScript
//!   call at a time) the CPU per webhook stayed the same (3.9 ms against
//!   3.7 ms at 64). A CPU-bound cap near the core count therefore does not
//!   lower the cost per call; it only bounds the number of warm slots.
//!
//! The cost is the fresh instance itself: every call starts a cold
//! interpreter heap that its guest code, the kernel and the slot reset all
//! pay for. Hence warm instances ([`warm`]): an element that declares itself
//! stateless keeps its instance between calls of the same element instance
//! and configuration. Measured with `--bench languages` (one call at a
//! time, then 64 in flight; the machine shared with builds): Shopify
//! (Python) 3.5 ms → 0.20 ms per call and 4,150 → 227 µs of CPU per call
//! at 64 in flight; GitHub (JavaScript) 1.5 ms → 0.85 ms and 2,120 → 590–860
//! µs. What remains for JavaScript is the guest itself: SpiderMonkey
//! interprets the element's code.
//!
//! Where a warm JavaScript call's CPU goes (the same load, warm instances,
//! `perf record -F 1999 -p` for 10 s; the compiled `.cwasm` artifact names
//! guest functions by index, as the componentize-js output carries no name
//! section): guest code 54% of the sidecar's CPU, the host binary 20%, the
//! kernel 17%, libc 8%, at about 1 ms of sidecar CPU per webhook. One guest
//! function, 72 KB of code around a 206-way dispatch table (one of
//! SpiderMonkey's interpreter loops), takes 19% of all the CPU; no other
//! guest function takes more than 3%. The host's part is flat: SQLite,
//! hyper and axum, the kernel's socket and file I/O, malloc. So even with
//! every guest instruction gone a JavaScript webhook would cost the host
//! about 0.45 ms here, several times the Rust element's cost per webhook.
//!
//! componentize-js's ahead-of-time compilation (`--aot`, with `weval`
//! 0.5.1 from crates.io) does not help: in two paired `ingest_load` runs
//! the AOT-built GitHub element (16.3 MB instead of 12.2 MB) ingested
//! 1,289 and 1,172 webhooks/s warm against 1,397 and 1,289 without it, and
//! was slower with fresh instances too. A call this short spends little
//! time in the bytecode the partial evaluator specializes, and the
//! specialized engine is larger; `plugins/build.sh` does not use it.
//!
//! With names: componentize-js ships a StarlingMonkey engine with a name
//! section (`--use-debug-build`), and an engine built with
//! `Config::profiler(ProfilingStrategy::PerfMap)` gives `perf` the guest's
//! function names. A warm GitHub call under the ingest load then shows
//! SpiderMonkey's interpreter loop (`js::Interpret`, 20% of the sidecar's
//! CPU), name and property lookups, and calls — the interpreter running
//! JavaScript, not the engine's native work (`JSON.parse` and `stringify`
//! are under 1% each). Much of that JavaScript is the bindings
//! componentize-js generates: they counted the UTF-8 bytes of every
//! returned string in a per-character loop, which `componentize.mjs` (in
//! the JavaScript template, also used by `plugins/build.sh`) replaces with
//! the native encoder. An element that returns one fixed event without
//! reading its request still cost about 150 µs per warm call in-process,
//! against 13 µs for the Rust element: lifting each header and
//! configuration entry, and the promise job around every export.
//!
//! In the sidecar a warm JavaScript call costs more than in-process. On
//! the 2-core machine, in one sitting: `--bench languages` ran warm GitHub
//! calls at 145–151 µs of CPU per call (64 in flight; 1.0–1.4 minor page
//! faults per call), and still 150 µs with a Rust ingest load running on
//! the same cores. The sidecar under `ingest_load` (`LOAD_INSTANCES=warm
//! LOAD_LANGUAGES=javascript`) spent 406–470 µs per webhook, against
//! 146–187 µs for the Rust element. Split by thread over 4 s of load, the
//! tokio workers took about 355 µs per JavaScript webhook against 105 µs
//! for Rust, and the SQLite writer thread 103 µs against 69 µs. The
//! writer's part is larger because at a lower rate each group commit holds
//! fewer receipts: 30–32 KB reached the disk per JavaScript webhook
//! against 18–23 KB for Rust, and 48 KB with 8 connections instead of 64
//! (the writer's commit delay, added since, brings JavaScript to 17–19 KB).
//! A profile (`perf record -F 999 -p`, 5 s) put 48% of the sidecar's CPU
//! in guest code, about 233 µs per webhook, with the same functions in the
//! same proportions as in-process (the interpreter loop a quarter of the
//! guest's time), so the guest code itself runs slower there. Neither
//! capping the element's calls in flight at 2 or 4, nor keeping 2, 4 or 64
//! warm instances instead of 16, changed that beyond the run-to-run spread
//! (3,866–4,437/s), and TLB shoot-downs were about 0.26 per webhook.
//!
//! Experiments with a temporarily instrumented build narrowed it. Run
//! inside the sidecar process, with the HTTP load held back, the same loop
//! as `--bench languages` (20,000 warm GitHub calls, 64 in flight, on the
//! request and configuration the sidecar had just passed) cost 177–244 µs
//! of CPU per call over six rounds, 89% of it guest code, against 141–170
//! µs in the benchmark's own process on the same day. Running every webhook
//! call on one dedicated thread, so that guest calls followed each other
//! instead of alternating with the host's HTTP and SQLite work, did not
//! help either: that thread spent 185–226 µs per call (per-thread CPU over
//! 4 s of load), the ingest rate stayed within the default's spread, and
//! the tokio workers' and guest's CPU together (277 and 335 µs per webhook)
//! was about the default's workers' (284–313 µs). What the sidecar's call
//! has and the benchmark's had not is input: three more headers (`host`,
//! `content-length`, the `x-request-id` plugboard adds) and three more
//! configuration entries (`event.notification.*`). Given those, the
//! benchmark's warm call cost 164–166 instead of 124 µs at 64 in flight,
//! and 148–153 instead of 115–119 µs one at a time (two alternated runs
//! each). So most of the gap is lifting arguments into JavaScript values,
//! about 6 µs per header or configuration entry, and the rest is within the
//! noise of these comparisons. Since then the element is given neither the
//! `event.*` entries nor the `x-request-id` plugboard makes: only what the
//! instance's creator and the vendor sent.
//!
//! Lifting is the bindings' work, and `componentize.mjs` runs the
//! generated bindings in one function scope (see `docs/plugins.md`), which
//! cut a warm call's CPU by about an eighth in-process (147–151 → 128–132
//! µs at 64 in flight). In the sidecar, three alternated `ingest_load`
//! runs (warm, 30,000 webhooks, with the element's configuration lookup
//! also a plain loop) ingested 5,769, 5,424 and 5,623/s (314–334 µs per
//! webhook) against 4,948, 4,936 and 5,283/s (348–368 µs) with the
//! bindings as generated.

mod artifact;
mod bindings;
mod breaker;
mod cache;
mod call_log;
mod compiler;
mod contract;
mod description;
mod error;
mod fairness;
mod lanes;
mod limits;
mod plugin;
mod state;
mod subscription;
mod warm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use bindings::{
    ConfigKey, ElementError, ElementInfo, EventModes, EventType, Header, HttpRequest, HttpResponse,
    NormalizedEvent, PollContext, PollPage, WebhookEvents, WebhookOutcome,
};
pub use compiler::run_child as run_compiler_child;
pub use contract::ContractVersion;
pub use description::{ElementDescription, HOST_KEY_PREFIX};
pub use error::{CallError, LoadError};
pub use fairness::FairnessConfig;
pub use plugin::ElementPlugin;
pub use state::{CallLabel, FetchFixtures, FetchScope};
pub use warm::WarmConfig;

use contract::ElementPre;
use fairness::ElementGuards;
use lanes::LongCallLanes;
use state::CallState;
use warm::WarmBudget;

/// Bytes of each linear memory kept mapped (and reset in place) between calls.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// Bytes of each table kept mapped between calls.
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
/// Bytes at the top of each fiber stack zeroed in place between calls; the
/// rest of the stack (whatever a deep call touched) is decommitted.
const KEEP_RESIDENT_STACK_BYTES: usize = 64 << 10;
/// Idle pool slots that stay warm (keeping their resident pages) for the
/// plugin that used them last; beyond that, a new call reuses an idle
/// slot of another plugin before touching a cold one. Without this bound
/// (wasmtime's default is 100) every call in turn warms another slot and
/// resident memory creeps up long after a burst of calls.
const MAX_UNUSED_WARM_SLOTS: u32 = 4;

/// How often the engine's epoch advances: the granularity of CPU deadlines,
/// and, once a call has run [`FIRST_YIELD_TICKS`], the longest it holds its
/// executor thread before it yields (so a long call delays the requests
/// queued behind it on that thread by at most one tick).
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Ticks a call runs before its first yield: between 2 and 3 ms, so that a
/// typical call (a warm JavaScript or Python call takes a fraction of a
/// millisecond to a millisecond or two) ends without yielding.
///
/// Yielding at the first tick, 0–1 ms into a call, suspended about half of
/// the warm JavaScript calls halfway; the worker then started the next
/// request's call, in another instance. Many instances were then in use at
/// once: their heaps crowded the CPU caches (in-process, rotating one
/// element's calls over 16 warm instances instead of one cost 370 against
/// 250 µs per call), and calls beyond the warm instances kept took fresh
/// ones (500 of 20,000 in the ingest benchmark, 3 ms each). With the first
/// yield after 2–3 ms the JavaScript ingest with warm instances rose by a
/// tenth to a quarter and its p99 fell from about 120 to 80 ms (`cargo
/// bench -p plugboard --bench ingest_load`, see the README). The price is
/// paid by calls of a few milliseconds, such as a fresh JavaScript or
/// Python instance's: they hold their thread a little longer, and the p99
/// of ingest with fresh instances rose (about 180 to 180–280 ms for
/// JavaScript).
/// A long call still yields every tick after its first few, and a call of
/// 20 ms still needs a lane ([`lanes`]).
const FIRST_YIELD_TICKS: u64 = 3;

/// Limits and tuning of the plugin runtime.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// CPU time one plugin call may use before it is stopped, in milliseconds
    /// (time blocked in host imports such as `https-get` does not count).
    pub call_timeout_ms: u64,
    /// Largest linear memory one plugin call may grow to, in bytes.
    pub memory_limit_bytes: usize,
    /// Most plugin calls running at once; further calls wait for a slot.
    pub max_concurrent_calls: usize,
    /// Use wasmtime's pooling allocator (fast instantiation). Falls back to
    /// on-demand allocation if the machine refuses the reservation.
    pub pooling: bool,
    /// How the runtime is shared between elements (concurrency budget and
    /// circuit breaker per element).
    pub fairness: FairnessConfig,
    /// Largest plugin file loaded, in bytes; bigger files are refused
    /// before they are read.
    pub max_plugin_file_bytes: u64,
    /// How warm instances of stateless elements are kept between calls.
    pub warm: WarmConfig,
    /// Folder for compiled plugin artifacts (keyed by content hash and engine
    /// compatibility). `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Program that compiles plugins missing from the cache in a child
    /// process (the `plugboard` binary itself, run as `plugboard plugins
    /// compile`), so the compiler's memory never stays in the host. `None`
    /// compiles in this process. Set by the binary, not by configuration.
    #[serde(skip)]
    pub compiler_program: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: 1_000,
            memory_limit_bytes: 128 << 20,
            max_concurrent_calls: 64,
            pooling: true,
            fairness: FairnessConfig::default(),
            max_plugin_file_bytes: 64 << 20,
            warm: WarmConfig::default(),
            cache_dir: None,
            compiler_program: None,
        }
    }
}

impl RuntimeConfig {
    /// Refuses a plugin of `len` bytes if it is over `max_plugin_file_bytes`,
    /// naming both sizes and the setting.
    pub fn check_plugin_size(&self, len: u64) -> Result<(), String> {
        if len <= self.max_plugin_file_bytes {
            return Ok(());
        }
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        Err(format!(
            "the file is {len} bytes ({:.1} MiB), larger than max_plugin_file_mb \
             ({:.0} MiB); it was not read",
            mib(len),
            mib(self.max_plugin_file_bytes)
        ))
    }
}

/// The plugin runtime: one engine, one linker, shared by every plugin.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    config: RuntimeConfig,
    pooled: bool,
    calls: Arc<tokio::sync::Semaphore>,
    /// Each element's concurrency budget and circuit breaker.
    elements: ElementGuards,
    /// The bound on warm instances kept, shared by every element.
    warm: Arc<WarmBudget>,
    /// The lanes long calls run in.
    lanes: LongCallLanes,
    /// The thread advancing the epoch; woken when a call starts.
    ticker: std::thread::Thread,
}

impl Runtime {
    /// Creates the engine (pooling allocator where possible), links WASI
    /// deny-by-default and the plugboard host imports, and starts the epoch
    /// ticker that enforces CPU deadlines.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(config.call_timeout_ms > 0, "call_timeout_ms must be > 0");
        anyhow::ensure!(
            config.memory_limit_bytes >= 1 << 20,
            "memory_limit_bytes must be at least 1 MiB"
        );
        anyhow::ensure!(
            config.max_concurrent_calls > 0,
            "max_concurrent_calls must be > 0"
        );
        let (engine, pooled) = build_engine(&config)?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        bindings::v0_2::ElementPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(anyhow::Error::from)
        .context("linking host imports")?;
        bindings::v0_1::ElementPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(anyhow::Error::from)
        .context("linking the 0.1.0 host imports")?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating plugin cache folder {}", dir.display()))?;
        }
        let calls = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_calls));
        let ticker = start_epoch_ticker(&engine, calls.clone(), config.max_concurrent_calls);
        let elements = ElementGuards::new(&config.fairness, config.max_concurrent_calls);
        let warm = WarmBudget::new(config.warm.clone());
        let lanes = LongCallLanes::new(config.fairness.long_call_lanes());
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                pooled,
                calls,
                elements,
                warm,
                lanes,
                ticker,
            }),
        })
    }

    /// Whether the pooling allocator is in use.
    pub fn is_pooled(&self) -> bool {
        self.inner.pooled
    }

    /// The runtime's limits.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Compiles (or loads from cache) and links a plugin on a blocking
    /// thread, then asks it to describe itself.
    pub async fn load(&self, wasm: &[u8]) -> Result<ElementPlugin, LoadError> {
        self.inner
            .config
            .check_plugin_size(wasm.len() as u64)
            .map_err(LoadError::Invalid)?;
        let hash = cache::content_hash(wasm);
        let (runtime, bytes, key) = (self.clone(), wasm.to_vec(), hash.clone());
        let pre = tokio::task::spawn_blocking(move || runtime.link(&bytes, &key))
            .await
            .map_err(|e| LoadError::Io(format!("the loading thread failed: {e}")))??;
        ElementPlugin::new(self.clone(), pre, hash).await
    }

    /// Compiles (or loads from cache) and pre-links a plugin against the
    /// contract version it exports. CPU-heavy on a cache miss.
    fn link(&self, wasm: &[u8], hash: &str) -> Result<ElementPre, LoadError> {
        let component = self.compile(wasm, hash)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Contract(format!("{e:#}")))?;
        ElementPre::new(&component, pre)
    }

    fn compile(&self, wasm: &[u8], hash: &str) -> Result<Component, LoadError> {
        if wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] == [1, 0, 0, 0] {
            return Err(LoadError::Invalid(
                "this is a core WebAssembly module, not a component; \
                 convert it with `wasm-tools component new`"
                    .into(),
            ));
        }
        let engine = &self.inner.engine;
        match &self.inner.config.cache_dir {
            Some(dir) => cache::load_or_compile(engine, &self.inner.config, dir, hash, wasm),
            None => Component::new(engine, wasm).map_err(|e| LoadError::Invalid(format!("{e:#}"))),
        }
    }
}

/// The engine `config` describes; the compiler child builds the same one,
/// so its artifacts fit the host's.
fn build_engine(config: &RuntimeConfig) -> anyhow::Result<(Engine, bool)> {
    let mut base = Config::new();
    base.wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    if config.pooling {
        let mut pooled = base.clone();
        // Zero each fiber stack when its call ends, so a deep call's stack
        // pages are given back instead of staying resident in the pool.
        pooled.async_stack_zeroing(true);
        let mut pool = PoolingAllocationConfig::default();
        // Calls in flight (twice, for calls racing a slot's release), warm
        // instances kept between calls, and a margin.
        let slots = u32::try_from(config.max_concurrent_calls)
            .unwrap_or(u32::MAX)
            .saturating_mul(2)
            .saturating_add(u32::try_from(config.warm.instances).unwrap_or(u32::MAX))
            .saturating_add(8);
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(8))
            .max_memories_per_component(16)
            .max_tables_per_component(64)
            .max_core_instances_per_component(64)
            .max_memory_size(config.memory_limit_bytes)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .table_elements(1 << 20)
            // Reset a used slot by rewriting only the pages the call dirtied
            // (found with Linux's PAGEMAP_SCAN where available) instead of
            // unmapping them: the next call then takes no page faults. This is
            // most of the cost of a fresh instance per call.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
            .async_stack_keep_resident(KEEP_RESIDENT_STACK_BYTES)
            .max_unused_warm_slots(MAX_UNUSED_WARM_SLOTS)
            // One fiber stack per call in flight (calls run asynchronously;
            // a warm instance holds none between calls).
            .total_stacks(slots)
            .pagemap_scan(wasmtime::Enabled::Auto);
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "pooling allocator unavailable; using on-demand allocation")
            }
        }
    }
    let engine = Engine::new(&base)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")?;
    Ok((engine, false))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a background thread
/// while plugin calls hold slots of `calls` (of `slots`), for as long as the
/// engine lives. With no call in flight the thread sleeps until a call wakes
/// it, so an idle host does not wake up hundreds of times a second.
fn start_epoch_ticker(
    engine: &Engine,
    calls: Arc<tokio::sync::Semaphore>,
    slots: usize,
) -> std::thread::Thread {
    let weak = engine.weak();
    let handle = std::thread::Builder::new()
        .name("plugboard-epoch".into())
        .spawn(move || loop {
            if calls.available_permits() >= slots {
                // Woken by the next call (which then gets a full first tick);
                // the timeout lets the thread notice that the engine is gone.
                std::thread::park_timeout(Duration::from_secs(1));
                if weak.upgrade().is_none() {
                    break;
                }
                continue;
            }
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .expect("spawning the epoch thread");
    handle.thread().clone()
}
