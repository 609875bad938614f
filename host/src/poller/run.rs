//! One poll of one instance: every resource in turn, with the instance's
//! run lock held so two polls of one instance never overlap, and each
//! resource's status, checkpoint and backoff kept up to date.
//!
//! Backoff: after `n` failures in a row a resource is next polled at the
//! first planned time at least `interval × 2^(n-1)` (at most
//! `max_backoff`, and never before a `Retry-After`) after the failed poll's
//! planned time. Polls started by hand ignore the backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::error::PollError;
use super::page::{poll_resource, Polled, Target};
use super::plan::Plan;
use super::status::{InstanceStatus, ResourceStatus};
use super::Shared;

/// Why a poll runs.
#[derive(Clone, Copy, Debug)]
pub(super) enum Trigger {
    /// The scheduler planned it for this moment.
    Scheduled(Instant),
    /// Someone asked for it (`POST /instances/{id}/poller`).
    Manual,
}

/// A scheduled instance: its plan, its run lock and what is known of it.
pub(super) struct Entry {
    plan: Mutex<Arc<Plan>>,
    /// Where a resource without a checkpoint starts reading: when the
    /// instance was last changed before the poller first saw it (later
    /// changes, such as a new name, do not move it).
    first_window: OffsetDateTime,
    run_lock: tokio::sync::Mutex<()>,
    state: Mutex<EntryState>,
}

#[derive(Default)]
struct EntryState {
    resources: HashMap<String, ResourceState>,
    checkpoints_loaded: bool,
    next_run: Option<Instant>,
    last_lag: Option<Duration>,
    skipped_busy: u64,
}

#[derive(Default)]
struct ResourceState {
    status: ResourceStatus,
    retry_at: Option<Instant>,
}

impl Entry {
    /// A new entry for `plan`.
    pub(super) fn new(plan: Plan) -> Self {
        Self {
            first_window: plan.updated_at,
            plan: Mutex::new(Arc::new(plan)),
            run_lock: tokio::sync::Mutex::new(()),
            state: Mutex::default(),
        }
    }

    /// The current plan.
    pub(super) fn plan(&self) -> Arc<Plan> {
        self.plan.lock().expect("plan lock").clone()
    }

    /// Replaces the plan (the instance changed); statuses are kept.
    pub(super) fn set_plan(&self, plan: Plan) {
        *self.plan.lock().expect("plan lock") = Arc::new(plan);
    }

    /// Notes when the next scheduled poll is planned.
    pub(super) fn set_next_run(&self, at: Instant) {
        self.state.lock().expect("state lock").next_run = Some(at);
    }

    /// The instance's status as the API shows it.
    pub(super) fn status(&self) -> InstanceStatus {
        let plan = self.plan();
        let state = self.state.lock().expect("state lock");
        let resources = plan
            .resources
            .iter()
            .map(|r| {
                let kept = state.resources.get(&r.name);
                let mut status = kept.map(|k| k.status.clone()).unwrap_or_default();
                status.resource = r.name.clone();
                status.next_run = state.next_run.map(|next| {
                    let retry = kept.and_then(|k| k.retry_at);
                    wall(first_slot_from(next, plan.interval, retry))
                });
                status
            })
            .collect();
        InstanceStatus {
            instance_id: plan.id,
            interval_seconds: plan.interval.as_secs_f64(),
            running: self.run_lock.try_lock().is_err(),
            next_run: state.next_run.map(wall),
            last_lag_ms: state.last_lag.map(|l| l.as_secs_f64() * 1000.0),
            skipped_busy: state.skipped_busy,
            resources,
        }
    }
}

/// Polls every resource of the entry's instance.
pub(super) async fn run(shared: Arc<Shared>, entry: Arc<Entry>, trigger: Trigger) {
    let _running = match trigger {
        Trigger::Scheduled(_) => match entry.run_lock.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                entry.state.lock().expect("state lock").skipped_busy += 1;
                shared
                    .counters
                    .skipped_busy
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        },
        Trigger::Manual => entry.run_lock.lock().await,
    };
    let Ok(_slot) = shared.slots.acquire().await else {
        return;
    };
    if let Trigger::Scheduled(planned) = trigger {
        let lag = Instant::now().saturating_duration_since(planned);
        shared.counters.started(lag);
        entry.state.lock().expect("state lock").last_lag = Some(lag);
    }
    let plan = entry.plan();
    let fence = shared.cluster.fence(plan.id);
    load_checkpoints(&shared, &entry, plan.id).await;
    let plugin = shared.registry.get(&plan.element_key);
    for resource in &plan.resources {
        if let Trigger::Scheduled(planned) = trigger {
            let state = entry.state.lock().expect("state lock");
            let waiting = state.resources.get(&resource.name).and_then(|r| r.retry_at);
            if waiting.is_some_and(|at| at > planned) {
                continue;
            }
        }
        let started = OffsetDateTime::now_utc();
        let checkpoint = {
            let mut state = entry.state.lock().expect("state lock");
            let r = state.resources.entry(resource.name.clone()).or_default();
            r.status.last_run = Some(started);
            r.status.checkpoint.unwrap_or(entry.first_window)
        };
        let result = match &plugin {
            Some(plugin) => {
                let target = Target {
                    shared: &shared,
                    plan: &plan,
                    plugin,
                    resource,
                    fence: fence.as_ref(),
                };
                poll_resource(&target, checkpoint, started).await
            }
            None => Err(PollError::Setup(format!(
                "element plugin {} is not loaded",
                plan.element_key
            ))),
        };
        if matches!(result, Err(PollError::Fenced)) {
            fenced(&shared, plan.id, &resource.name);
            return;
        }
        let reference = match trigger {
            Trigger::Scheduled(planned) => planned,
            Trigger::Manual => Instant::now(),
        };
        record(
            &shared,
            &entry,
            &plan,
            &resource.name,
            started,
            reference,
            result,
        );
    }
}

/// A page was fenced: the partition passed to another replica (or its
/// lease lapsed) while this poll ran. Nothing was written; the instance
/// leaves this replica's schedule and the leases are checked at once.
fn fenced(shared: &Shared, id: i64, resource: &str) {
    crate::telemetry::metrics::poll_page_fenced();
    tracing::warn!(
        instance = id,
        resource,
        "poll page fenced: the partition lease no longer holds; nothing written, polling here stops"
    );
    shared.entries.write().expect("entries lock").remove(&id);
    shared.cluster.recheck();
}

/// Reads the instance's checkpoints from the store once.
async fn load_checkpoints(shared: &Shared, entry: &Entry, id: i64) {
    if entry.state.lock().expect("state lock").checkpoints_loaded {
        return;
    }
    match shared.store.poll_checkpoints(id).await {
        Ok(kept) => {
            let mut state = entry.state.lock().expect("state lock");
            for c in kept {
                let r = state.resources.entry(c.resource).or_default();
                r.status.checkpoint = Some(c.checkpoint);
            }
            state.checkpoints_loaded = true;
        }
        Err(e) => tracing::warn!(instance = id, error = %e, "reading poll checkpoints failed"),
    }
}

/// Records the outcome of one resource's poll.
fn record(
    shared: &Shared,
    entry: &Entry,
    plan: &Plan,
    resource: &str,
    started: OffsetDateTime,
    reference: Instant,
    result: Result<Polled, PollError>,
) {
    crate::telemetry::metrics::poll_run(&plan.element_key, result.is_ok());
    let mut state = entry.state.lock().expect("state lock");
    let r = state.resources.entry(resource.to_string()).or_default();
    match result {
        Ok(polled) => {
            tracing::debug!(
                instance = plan.id,
                resource,
                events = polled.events,
                pages = polled.pages,
                "polled"
            );
            let s = &mut r.status;
            s.last_success = Some(started);
            s.last_error = None;
            s.consecutive_failures = 0;
            s.retry_at = None;
            s.checkpoint = Some(polled.checkpoint);
            s.events_found = polled.events;
            s.events_total += polled.events;
            s.pages = polled.pages;
            r.retry_at = None;
        }
        Err(e) => {
            shared
                .counters
                .failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let s = &mut r.status;
            s.consecutive_failures += 1;
            s.last_error = Some(e.to_string());
            let cap = shared.config.max_backoff.max(plan.interval);
            let doublings = s.consecutive_failures.saturating_sub(1).min(20);
            let backoff = plan.interval.saturating_mul(1 << doublings).min(cap);
            let mut retry_at = reference + backoff;
            if let Some(wait) = e.retry_after() {
                retry_at = retry_at.max(Instant::now() + wait.min(cap));
            }
            r.retry_at = Some(retry_at);
            s.retry_at = Some(wall(retry_at));
            tracing::warn!(instance = plan.id, resource, failures = s.consecutive_failures, error = %e, "poll failed");
        }
    }
}

/// The first planned time (`next`, `next + interval`, …) not before `retry`.
fn first_slot_from(next: Instant, interval: Duration, retry: Option<Instant>) -> Instant {
    match retry {
        Some(at) if at > next && !interval.is_zero() => {
            let behind = (at - next).as_secs_f64() / interval.as_secs_f64();
            next + interval.mul_f64(behind.ceil())
        }
        _ => next,
    }
}

/// A monotonic instant as wall-clock time.
fn wall(at: Instant) -> OffsetDateTime {
    let (now, wall_now) = (Instant::now(), OffsetDateTime::now_utc());
    if at >= now {
        wall_now + (at - now)
    } else {
        wall_now - (now - at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_land_on_planned_slots() {
        let next = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(first_slot_from(next, second, None), next);
        assert_eq!(first_slot_from(next, second, Some(next - second)), next);
        assert_eq!(
            first_slot_from(next, second, Some(next + second / 2)),
            next + second
        );
        assert_eq!(
            first_slot_from(next, second, Some(next + second * 3)),
            next + second * 3
        );
    }
}
