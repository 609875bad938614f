//! Fair shares of the runtime between elements, so that one element whose
//! calls keep failing cannot slow every other element down.
//!
//! Every element (by key, across reloads of its plugin file) has an
//! [`ElementGuard`]: a concurrency budget — at most
//! `element_max_concurrent_calls` of its calls run at once, so one element
//! never holds every slot of `max_concurrent_calls` — and a circuit
//! [`Breaker`]. A call first waits for a place in its element's budget, then
//! asks the breaker, then waits for one of the runtime's slots. While the
//! breaker is open the call is refused at once with
//! [`CallError::CircuitOpen`] (503 with `Retry-After` on the HTTP surface)
//! and uses no CPU: a misbehaving element's share is then one trial call per
//! cool-down. Openings and closings are logged and counted in the metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::breaker::{Breaker, BreakerLimits, Transition, Verdict};
use super::CallError;
use crate::telemetry::metrics;

/// How the runtime shares itself between elements.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FairnessConfig {
    /// Most calls of one element running at once; `None`: half of
    /// `max_concurrent_calls` (at least 1).
    pub element_max_concurrent_calls: Option<usize>,
    /// Plugin failures (traps, timeouts, memory blow-ups) of one element
    /// within `breaker_window_secs` that open its circuit breaker; 0 never
    /// opens it.
    pub breaker_failures: u32,
    /// Seconds within which an element's failures are counted together.
    pub breaker_window_secs: u64,
    /// Seconds an open breaker refuses the element's calls before it lets
    /// one trial call through.
    pub breaker_cooldown_secs: u64,
    /// Lanes for long calls: calls that have used 20 ms of CPU go on only
    /// while they hold one ([`super::lanes`]); `None`: one fewer than the
    /// cores, at least one.
    pub long_call_lanes: Option<usize>,
}

impl Default for FairnessConfig {
    fn default() -> Self {
        Self {
            element_max_concurrent_calls: None,
            breaker_failures: 5,
            breaker_window_secs: 30,
            breaker_cooldown_secs: 30,
            long_call_lanes: None,
        }
    }
}

impl FairnessConfig {
    /// The per-element budget when the runtime has `max_concurrent_calls` slots.
    pub fn element_budget(&self, max_concurrent_calls: usize) -> usize {
        self.element_max_concurrent_calls
            .unwrap_or(max_concurrent_calls / 2)
            .clamp(1, max_concurrent_calls.max(1))
    }

    /// The number of lanes for long calls.
    pub fn long_call_lanes(&self) -> usize {
        self.long_call_lanes
            .unwrap_or_else(super::lanes::LongCallLanes::default_count)
            .max(1)
    }

    fn limits(&self) -> BreakerLimits {
        BreakerLimits {
            failures: self.breaker_failures,
            window: Duration::from_secs(self.breaker_window_secs),
            cooldown: Duration::from_secs(self.breaker_cooldown_secs),
        }
    }
}

/// The guards of every element that has been called, by element key.
pub(crate) struct ElementGuards {
    budget: usize,
    limits: BreakerLimits,
    by_key: Mutex<HashMap<String, Arc<ElementGuard>>>,
}

impl ElementGuards {
    pub(crate) fn new(config: &FairnessConfig, max_concurrent_calls: usize) -> Self {
        Self {
            budget: config.element_budget(max_concurrent_calls),
            limits: config.limits(),
            by_key: Mutex::default(),
        }
    }

    /// The guard of `element`; every version of its plugin shares it.
    pub(crate) fn get(&self, element: &str) -> Arc<ElementGuard> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key
            .entry(element.to_string())
            .or_insert_with(|| {
                Arc::new(ElementGuard {
                    element: element.to_string(),
                    budget: Arc::new(Semaphore::new(self.budget)),
                    breaker: Mutex::new(Breaker::new(self.limits)),
                })
            })
            .clone()
    }
}

/// One element's concurrency budget and circuit breaker.
pub(crate) struct ElementGuard {
    element: String,
    budget: Arc<Semaphore>,
    breaker: Mutex<Breaker>,
}

impl ElementGuard {
    /// Waits for a place in the element's budget and asks its breaker;
    /// refuses at once while the breaker is open.
    pub(crate) async fn admit(self: &Arc<Self>) -> Result<Admission, CallError> {
        let permit = self
            .budget
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::Unavailable("runtime is shutting down".into()))?;
        let (verdict, transition) = self.breaker().admit(Instant::now());
        self.report(transition);
        match verdict {
            Verdict::Run { trial } => Ok(Admission {
                guard: self.clone(),
                _permit: permit,
                trial,
                finished: false,
            }),
            Verdict::Refuse { retry_after } => {
                metrics::plugin_call_refused(&self.element);
                Err(CallError::CircuitOpen {
                    element: self.element.clone(),
                    retry_after,
                })
            }
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs and counts a change of the breaker's state.
    fn report(&self, transition: Option<Transition>) {
        let Some(transition) = transition else {
            return;
        };
        let element = self.element.as_str();
        let opened = matches!(transition, Transition::Opened { .. } | Transition::Reopened);
        metrics::plugin_breaker(element, self.breaker().is_open(), opened);
        match transition {
            Transition::Opened { failures } => {
                tracing::warn!(
                    element,
                    failures,
                    "plugin circuit breaker opened: the element's calls keep failing; \
                     its requests are answered 503 until the cool-down is over"
                );
            }
            Transition::Reopened => tracing::warn!(
                element,
                "plugin circuit breaker opened again: the trial call failed"
            ),
            Transition::HalfOpened => {
                tracing::info!(element, "plugin circuit breaker half-open: trying one call")
            }
            Transition::Closed => tracing::info!(
                element,
                "plugin circuit breaker closed: the trial call succeeded"
            ),
        }
    }
}

/// A call's place in its element's budget; reports the call's outcome to
/// the breaker with [`Admission::finish`].
pub(crate) struct Admission {
    guard: Arc<ElementGuard>,
    _permit: OwnedSemaphorePermit,
    trial: bool,
    finished: bool,
}

impl Admission {
    /// The call ended; `failed` when the plugin itself failed.
    pub(crate) fn finish(mut self, failed: bool) {
        self.finished = true;
        let transition = self
            .guard
            .breaker()
            .record(Instant::now(), self.trial, failed);
        self.guard.report(transition);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.trial && !self.finished {
            self.guard.breaker().abandon_trial();
        }
    }
}
