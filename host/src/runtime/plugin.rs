//! A loaded element plugin: compiled, pre-linked and described once; every
//! call runs in its own `Store` with its own limits, in a fresh instance or,
//! for a stateless element, a warm one kept for the same element instance
//! ([`super::warm`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use super::bindings::convert::Cast;
use super::bindings::{self};
use super::contract::ElementPre;
use super::description::ElementDescription;
use super::fairness::{Admission, ElementGuard};
use super::limits::{CpuDeadline, MemoryCap};
use super::state::{CallLabel, CallState, FetchScope};
use super::warm::{WarmInstance, WarmInstances};
use super::{
    CallError, HttpRequest, HttpResponse, LoadError, PollContext, PollPage, Runtime,
    WebhookOutcome, FIRST_YIELD_TICKS,
};
use crate::telemetry::metrics;

/// A compiled, linked and described element plugin. Cheap to clone.
#[derive(Clone)]
pub struct ElementPlugin {
    runtime: Runtime,
    pre: ElementPre,
    description: Arc<ElementDescription>,
    hash: Arc<str>,
    /// The element's budget and breaker; `None` while `describe()` runs
    /// (the key is not known yet).
    guard: Option<Arc<ElementGuard>>,
    /// The warm instances kept between calls, for an element that declared
    /// itself stateless (and a runtime that keeps any).
    warm: Option<Arc<WarmInstances>>,
}

/// Runs one export of `$plugin`: is admitted by the element's budget and
/// breaker, waits for a call slot, and calls the export in an instance with
/// the runtime's limits — a warm one kept for the element instance and
/// configuration `$reuse` names (`Some((instance id, config))`, for
/// elements that declared themselves stateless), or a fresh one in a new
/// store. The export interface of the component's contract version is bound
/// to `$guest` and the store to `$store` for the call of that version
/// (`v0_2`: the internal types as they are; `v0_1`: arguments converted
/// down, the result converted up). The call is recorded in the metrics
/// under `$what`; a warm or fresh 0.2.0 instance whose call succeeded is
/// offered back to the element's warm instances.
macro_rules! call_export {
    ($plugin:expr, $what:literal, $label:expr, $fetch:expr, $reuse:expr, |$guest:ident, $store:ident|
     v0_2: $current:expr, v0_1: $legacy:expr $(,)?) => {{
        let plugin = $plugin;
        let admission = plugin.admit().await?;
        let _permit = plugin.call_slot().await?;
        let started = Instant::now();
        match &plugin.pre {
            ElementPre::V0_2(pre) => {
                let reuse: Option<(i64, &Vec<(String, String)>)> = $reuse;
                match plugin.instance_v0_2(pre, $label, $fetch, reuse).await {
                    Ok(mut warm) => {
                        let result = {
                            let $guest = warm.guest.plugboard_element_element();
                            let $store = &mut warm.store;
                            $current.await
                        };
                        let result =
                            plugin.finish($what, started, &mut warm.store, result, admission);
                        if result.is_ok() {
                            plugin.keep_warm(warm, reuse.is_some());
                        } else {
                            drop_off_executor(warm);
                        }
                        result
                    }
                    Err((mut store, e)) => {
                        let result = plugin.finish($what, started, &mut store, Err(e), admission);
                        drop_off_executor(store);
                        result
                    }
                }
            }
            ElementPre::V0_1(pre) => {
                let mut store = plugin.new_store($label, $fetch);
                let result = match pre.instantiate_async(&mut store).await {
                    Ok(instance) => {
                        let $guest = instance.plugboard_element_element();
                        let $store = &mut store;
                        $legacy.await.map(Cast::cast)
                    }
                    Err(e) => Err(e),
                };
                let result = plugin.finish($what, started, &mut store, result, admission);
                if result.is_err() {
                    drop_off_executor(store);
                }
                result
            }
        }
    }};
}

impl ElementPlugin {
    pub(super) async fn new(
        runtime: Runtime,
        pre: ElementPre,
        hash: String,
    ) -> Result<Self, LoadError> {
        let contract_version = pre.version();
        let mut plugin = Self {
            runtime,
            pre,
            description: Arc::new(ElementDescription {
                key: String::new(),
                aliases: vec![],
                name: String::new(),
                version: String::new(),
                modes: vec![],
                config_keys: vec![],
                fetch_hosts: vec![],
                fetch_host_config_keys: vec![],
                default_poll_configuration: None,
                stateless: false,
                contract_version,
                subscribes: false,
            }),
            hash: hash.into(),
            guard: None,
            warm: None,
        };
        plugin.check_exports().await?;
        let described = async {
            call_export!(
                &plugin,
                "describe",
                CallLabel::default(),
                FetchScope::default(),
                None,
                |guest, store| v0_2: guest.call_describe(store),
                v0_1: guest.call_describe(store),
            )
        };
        let info = described
            .await
            .map_err(|e| LoadError::Describe(e.to_string()))?;
        let subscribes = plugin.pre.subscribes();
        plugin.description = Arc::new(ElementDescription::from_wit(
            info,
            contract_version,
            subscribes,
        )?);
        plugin.guard = Some(plugin.runtime.inner.elements.get(&plugin.description.key));
        let budget = &plugin.runtime.inner.warm;
        if plugin.description.stateless && budget.limit() > 0 {
            plugin.warm = Some(Arc::new(WarmInstances::new(budget.clone())));
        }
        Ok(plugin)
    }

    /// Instantiates the component once, without calling it, and checks
    /// every export against the contract version it claims.
    async fn check_exports(&self) -> Result<(), LoadError> {
        let _permit = self
            .call_slot()
            .await
            .map_err(|e| LoadError::Io(e.to_string()))?;
        let mut store = self.new_store(CallLabel::default(), FetchScope::default());
        let instance = self
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(|e| LoadError::Invalid(format!("instantiating the component: {e:#}")))?;
        super::contract::check_exports(&mut store, &instance, self.pre.version())?;
        if self.pre.subscribes() {
            super::contract::check_subscription_exports(&mut store, &instance, self.pre.version())?;
        }
        Ok(())
    }

    /// The component pre-linked against the host.
    pub(super) fn instance_pre(&self) -> &wasmtime::component::InstancePre<CallState> {
        self.pre.instance_pre()
    }

    /// What the element said about itself when it was loaded.
    pub fn description(&self) -> &ElementDescription {
        &self.description
    }

    /// Hex SHA-256 of plugin bytes, as [`Self::content_hash`] reports it.
    pub fn hash_of(wasm: &[u8]) -> String {
        super::cache::content_hash(wasm)
    }

    /// Hex SHA-256 of the plugin file.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    /// Verifies and maps an inbound webhook.
    #[allow(clippy::ptr_arg)] // the generated bindings take `&Vec`
    pub async fn webhook(
        &self,
        label: CallLabel,
        fetch: FetchScope,
        config: &Vec<(String, String)>,
        request: &HttpRequest,
    ) -> Result<WebhookOutcome, CallError> {
        call_export!(self, "webhook", label, fetch, self.reuse(&label, config), |guest, store|
            v0_2: guest.call_webhook(store, config, request),
            v0_1: guest.call_webhook(store, config, &request.clone().cast()),
        )?
        .map_err(CallError::Element)
    }

    /// Completes the request for one page of a poll.
    #[allow(clippy::ptr_arg)] // the generated bindings take `&Vec`
    pub async fn prepare_poll(
        &self,
        label: CallLabel,
        config: &Vec<(String, String)>,
        poll: &PollContext,
        draft: &HttpRequest,
    ) -> Result<HttpRequest, CallError> {
        call_export!(
            self,
            "prepare_poll",
            label,
            FetchScope::default(),
            self.reuse(&label, config),
            |guest, store| v0_2: guest.call_prepare_poll(store, config, poll, draft),
            v0_1: guest.call_prepare_poll(store, config, &poll.clone().cast(), &draft.clone().cast()),
        )?
        .map_err(CallError::Element)
    }

    /// Maps the vendor's answer to one poll request.
    #[allow(clippy::ptr_arg)] // the generated bindings take `&Vec`
    pub async fn map_poll(
        &self,
        label: CallLabel,
        config: &Vec<(String, String)>,
        poll: &PollContext,
        response: &HttpResponse,
    ) -> Result<PollPage, CallError> {
        call_export!(
            self,
            "map_poll",
            label,
            FetchScope::default(),
            self.reuse(&label, config),
            |guest, store| v0_2: guest.call_map_poll(store, config, poll, response),
            v0_1: guest.call_map_poll(store, config, &poll.clone().cast(), &response.clone().cast()),
        )?
        .map_err(CallError::Element)
    }

    /// The element instance and configuration a call may be served for
    /// from a warm instance: `None` unless the element is stateless and the
    /// call is for an instance.
    fn reuse<'c>(
        &self,
        label: &CallLabel,
        config: &'c Vec<(String, String)>,
    ) -> Option<(i64, &'c Vec<(String, String)>)> {
        self.warm.as_ref()?;
        Some((label.instance?, config))
    }

    /// The instance a 0.2.0 call runs in: a warm one kept for `reuse`'s
    /// element instance and configuration, readied for this call, or a
    /// fresh one in a new store. On failure, the store that could not be
    /// instantiated, for the error's classification.
    async fn instance_v0_2(
        &self,
        pre: &bindings::v0_2::ElementPluginPre<CallState>,
        label: CallLabel,
        fetch: FetchScope,
        reuse: Option<(i64, &Vec<(String, String)>)>,
    ) -> Result<WarmInstance, (Store<CallState>, wasmtime::Error)> {
        let element = &self.description.key;
        if let (Some(warm), Some((instance, config))) = (&self.warm, reuse) {
            if let Some(mut kept) = warm.take(instance, config) {
                let cpu = self.cpu_deadline();
                kept.store.data_mut().renew(cpu, label, fetch);
                kept.store.set_epoch_deadline(FIRST_YIELD_TICKS);
                metrics::plugin_instance(element, true);
                return Ok(kept);
            }
        }
        let mut store = self.new_store(label, fetch);
        match pre.instantiate_async(&mut store).await {
            Ok(guest) => {
                metrics::plugin_instance(element, false);
                let (instance, config) = reuse.map_or((0, &[][..]), |(i, c)| (i, &c[..]));
                Ok(WarmInstance::new(instance, config, store, guest))
            }
            Err(e) => Err((store, e)),
        }
    }

    /// Offers the instance of a call that succeeded to the element's warm
    /// instances, if it was a call they may serve; otherwise drops it.
    fn keep_warm(&self, instance: WarmInstance, reusable: bool) {
        if let (Some(warm), true) = (&self.warm, reusable) {
            let grown_to = instance.store.data().memory.grown_to;
            warm.keep(
                instance,
                grown_to,
                self.runtime.inner.config.memory_limit_bytes,
            );
        }
    }

    /// A new CPU deadline of the configured length, starting now.
    fn cpu_deadline(&self) -> CpuDeadline {
        CpuDeadline::new(
            Duration::from_millis(self.runtime.inner.config.call_timeout_ms),
            self.runtime.inner.lanes.clone(),
        )
    }

    /// Takes a place in the element's budget, if the element's breaker
    /// lets the call run.
    pub(super) async fn admit(&self) -> Result<Option<Admission>, CallError> {
        match &self.guard {
            Some(guard) => guard.admit().await.map(Some),
            None => Ok(None),
        }
    }

    /// Waits for one of the runtime's call slots, and makes sure the epoch
    /// ticker runs while the call does.
    pub(super) async fn call_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, CallError> {
        let inner = &self.runtime.inner;
        let permit = inner
            .calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::Unavailable("runtime is shutting down".into()))?;
        inner.ticker.unpark();
        Ok(permit)
    }

    /// A fresh store for one call, with the runtime's memory cap and CPU
    /// deadline. After its first [`FIRST_YIELD_TICKS`] epoch ticks, and at
    /// every tick after that, the guest yields to the executor (so a long
    /// call never holds a worker thread for more than a tick once it has
    /// run a few) and is stopped once its CPU budget is spent; time spent
    /// waiting to be resumed does not count against the budget.
    pub(super) fn new_store(&self, label: CallLabel, fetch: FetchScope) -> Store<CallState> {
        let config = &self.runtime.inner.config;
        let state = CallState::new(
            MemoryCap::new(config.memory_limit_bytes),
            self.cpu_deadline(),
            label,
            fetch,
        );
        let mut store = Store::new(&self.runtime.inner.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(FIRST_YIELD_TICKS);
        let element: Arc<str> = self.description.key.as_str().into();
        store.epoch_deadline_callback(move |mut ctx| {
            let cpu = &mut ctx.data_mut().cpu;
            if cpu.check() {
                return Ok(UpdateDeadline::Interrupt);
            }
            let suspended = cpu.suspension_meter();
            let lane = cpu
                .lane_to_wait_for()
                .map(|(lane, lanes)| (lane, lanes, element.clone()));
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    let yielded = Instant::now();
                    if let Some((lane, lanes, element)) = lane {
                        lane.take(&lanes, &element).await;
                    }
                    tokio::task::yield_now().await;
                    suspended.add(yielded.elapsed());
                }),
            ))
        });
        store
    }

    /// Records a finished call in the metrics and with the element's
    /// breaker, and names the limit that stopped it, if one did; a trap's
    /// error carries the last error-level lines the plugin logged (a
    /// panic's message, an uncaught exception).
    pub(super) fn finish<R>(
        &self,
        what: &'static str,
        started: Instant,
        store: &mut Store<CallState>,
        result: wasmtime::Result<R>,
        admission: Option<Admission>,
    ) -> Result<R, CallError> {
        store.data().cpu.release_lane();
        let logged = store.data_mut().finish_log();
        let result = result.map_err(|e| match classify(store.data(), e) {
            CallError::Trap(trap) => CallError::Trap(match logged {
                Some(logged) => format!("{trap}; the plugin logged: {logged}"),
                None => trap,
            }),
            other => other,
        });
        let failure = result.as_ref().err();
        metrics::plugin_call(
            &self.description.key,
            what,
            started.elapsed(),
            failure.map(CallError::kind),
        );
        if let Some(admission) = admission {
            admission.finish(failure.is_some_and(CallError::is_plugin_failure));
        }
        result
    }
}

/// Drops the store (or warm instance) of a failed call on a blocking
/// thread. Giving its slot back to the pool can take milliseconds after a
/// memory blow-up: every page the call touched beyond what the slot keeps
/// resident is decommitted, with TLB shoot-downs to the other cores. On an
/// executor thread that time would stall every request queued behind it.
fn drop_off_executor<T: Send + 'static>(leftover: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(move || drop(leftover));
        }
        Err(_) => drop(leftover),
    }
}

/// Turns a wasmtime error into the limit that caused it, or a trap.
fn classify(state: &CallState, error: wasmtime::Error) -> CallError {
    if state.cpu.exceeded {
        return CallError::Timeout(state.cpu.limit());
    }
    if state.memory.exceeded {
        return CallError::Memory(state.memory.limit());
    }
    if pool_exhausted(&error) {
        return CallError::Unavailable(format!("{:#}", error.root_cause()));
    }
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{:#}", error.root_cause()),
    };
    CallError::Trap(message)
}

/// Whether wasmtime refused an instance because the pooling allocator has
/// no free slot (more calls than slots): the host's limit, not the plugin's
/// fault. Matched by wasmtime's error type, not its message.
fn pool_exhausted(error: &wasmtime::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>())
}

#[cfg(test)]
mod tests {
    use wasmtime::{Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

    #[test]
    fn a_full_pool_is_recognized_by_type() {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(1)
            .total_memories(1)
            .total_tables(1);
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let Ok(engine) = Engine::new(&config) else {
            return; // the machine refuses the pool's reservation
        };
        let module = Module::new(&engine, wat::parse_str("(module)").unwrap()).unwrap();
        let mut first = wasmtime::Store::new(&engine, ());
        wasmtime::Instance::new(&mut first, &module, &[]).unwrap();
        let mut second = wasmtime::Store::new(&engine, ());
        let error = wasmtime::Instance::new(&mut second, &module, &[]).unwrap_err();
        assert!(super::pool_exhausted(&error), "{error:#}");
        let trap = wasmtime::Error::from(wasmtime::Trap::UnreachableCodeReached);
        assert!(!super::pool_exhausted(&trap));
    }
}
