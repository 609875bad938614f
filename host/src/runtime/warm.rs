//! Warm instances of stateless elements: a component instance that served
//! a call is kept, and serves later calls of the same element instance
//! with the same configuration, instead of a fresh instance per call.
//!
//! Only elements that declare `stateless` in `describe()` (contract 0.2.0)
//! are served this way. A warm instance is kept per element plugin (a hot
//! reload starts with none), keyed by the element instance's id and its
//! exact configuration, and is used by one call at a time. It is dropped
//! — never reused — after a call that failed (trap, timeout, memory), after
//! `warm_instance_calls` calls, once its memory has grown past half the
//! memory limit (so a slowly growing heap never fails a call), and when it
//! was idle for `warm_instance_idle_secs`. At most `warm_instances` are
//! kept across all elements, since each holds a pooled instance slot and
//! its memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::Store;

use super::bindings;
use super::state::CallState;

/// How warm instances of stateless elements are kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarmConfig {
    /// Most warm instances kept at once, across all elements; 0 gives
    /// every call a fresh instance.
    pub instances: usize,
    /// Calls one warm instance serves before it is replaced.
    pub calls: u32,
    /// How long an unused warm instance is kept.
    pub idle: Duration,
}

impl Default for WarmConfig {
    fn default() -> Self {
        Self {
            instances: 16,
            calls: 10_000,
            idle: Duration::from_secs(60),
        }
    }
}

/// A component instance kept between calls, with its store.
pub(crate) struct WarmInstance {
    /// The element instance it serves.
    instance: i64,
    /// The configuration it was first called with.
    config: Vec<(String, String)>,
    pub(crate) store: Store<CallState>,
    pub(crate) guest: bindings::v0_2::ElementPlugin,
    /// Calls it has served.
    calls: u32,
    /// When its last call ended.
    idle_since: Instant,
}

impl WarmInstance {
    /// A fresh instance that will serve `instance` with `config`.
    pub(crate) fn new(
        instance: i64,
        config: &[(String, String)],
        store: Store<CallState>,
        guest: bindings::v0_2::ElementPlugin,
    ) -> Self {
        Self {
            instance,
            config: config.to_vec(),
            store,
            guest,
            calls: 0,
            idle_since: Instant::now(),
        }
    }

    /// Whether it may serve a call of `instance` with `config`.
    fn serves(&self, instance: i64, config: &[(String, String)]) -> bool {
        self.instance == instance && self.config == config
    }
}

/// The limit on warm instances shared by every element of one runtime.
#[derive(Debug)]
pub(crate) struct WarmBudget {
    config: WarmConfig,
    /// Warm instances kept right now, across all elements.
    kept: AtomicUsize,
}

impl WarmBudget {
    pub(crate) fn new(config: WarmConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            kept: AtomicUsize::new(0),
        })
    }

    /// Most warm instances kept at once.
    pub(crate) fn limit(&self) -> usize {
        self.config.instances
    }

    /// Takes a place for one more warm instance, if there is one left.
    fn reserve(&self) -> bool {
        self.kept
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |kept| {
                (kept < self.config.instances).then_some(kept + 1)
            })
            .is_ok()
    }

    fn release(&self, count: usize) {
        self.kept.fetch_sub(count, Ordering::AcqRel);
    }
}

/// The idle warm instances of one element plugin.
pub(crate) struct WarmInstances {
    budget: Arc<WarmBudget>,
    /// Idle instances, the most recently used last.
    idle: Mutex<VecDeque<WarmInstance>>,
}

impl WarmInstances {
    pub(crate) fn new(budget: Arc<WarmBudget>) -> Self {
        Self {
            budget,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// An idle warm instance for `instance` with `config`, if one is kept;
    /// instances idle for too long are dropped on the way.
    pub(crate) fn take(&self, instance: i64, config: &[(String, String)]) -> Option<WarmInstance> {
        let (found, expired) = {
            let mut idle = self.idle.lock().expect("warm instances lock");
            let expired = self.expire(&mut idle);
            let found = idle
                .iter()
                .rposition(|warm| warm.serves(instance, config))
                .and_then(|at| idle.remove(at));
            (found, expired)
        };
        let released = expired.len() + usize::from(found.is_some());
        self.budget.release(released);
        drop(expired);
        found
    }

    /// Keeps `warm` after a call that succeeded, unless it has served its
    /// calls, its memory has grown too far or there is no room; `memory`
    /// is the largest size its linear memories reached.
    pub(crate) fn keep(&self, mut warm: WarmInstance, memory: usize, memory_limit: usize) {
        warm.calls += 1;
        if warm.calls >= self.budget.config.calls || memory > memory_limit / 2 {
            return;
        }
        warm.idle_since = Instant::now();
        let dropped = {
            let mut idle = self.idle.lock().expect("warm instances lock");
            let mut dropped = self.expire(&mut idle);
            self.budget.release(dropped.len());
            if self.budget.reserve() {
                idle.push_back(warm);
            } else if let Some(oldest) = idle.pop_front() {
                // No room left: this element's least recently used one
                // makes room.
                dropped.push(oldest);
                idle.push_back(warm);
            } else {
                dropped.push(warm);
            }
            dropped
        };
        // Dropped outside the lock: giving a slot back resets its memory.
        drop(dropped);
    }

    /// Removes the instances idle for longer than the configured time.
    fn expire(&self, idle: &mut VecDeque<WarmInstance>) -> Vec<WarmInstance> {
        let mut expired = Vec::new();
        while idle
            .front()
            .is_some_and(|warm| warm.idle_since.elapsed() > self.budget.config.idle)
        {
            expired.extend(idle.pop_front());
        }
        expired
    }
}

impl Drop for WarmInstances {
    fn drop(&mut self) {
        let idle = self.idle.get_mut().map(|idle| idle.len()).unwrap_or(0);
        self.budget.release(idle);
    }
}
