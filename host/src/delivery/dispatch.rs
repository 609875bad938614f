//! The dispatcher: claims due notifications and runs each one's attempt
//! ([`super::attempt`]) as a task, within the overall and per-host limits,
//! handing every outcome to the recorder. Asked to stop, it claims no more,
//! lets the deliveries in flight finish until the deadline, and records the
//! ones it abandons as due again ([`super::in_flight`]).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{watch, Notify, Semaphore};

use super::attempt::{deliver, HostLimits};
use super::in_flight::InFlight;
use super::recorder::Recorder;
use super::target::{self, Target};
use super::DeliveryConfig;
use crate::instance::InstanceService;
use crate::outbound::OutboundClient;
use crate::store::{DueNotification, Store};

/// Most notifications claimed at once.
const CLAIM_BATCH: u32 = 512;
/// Least time between two claims that came back short: lets notifications
/// accumulate into batches instead of one claim transaction per webhook.
const CLAIM_INTERVAL: Duration = Duration::from_millis(5);
/// How long the dispatcher sleeps when nothing is due and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// `Some(deadline)` once the dispatcher is asked to stop.
pub(super) type StopSignal = watch::Receiver<Option<tokio::time::Instant>>;

/// Resolves once a stop is asked for (never, if nobody can ask any more).
async fn stop_requested(stop: &mut StopSignal) {
    if stop.wait_for(Option::is_some).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What the dispatcher works with.
pub(super) struct Dispatcher {
    /// Durable store.
    pub store: Store,
    /// Instances with their typed settings.
    pub instances: InstanceService,
    /// Outbound client (policy applied).
    pub outbound: OutboundClient,
    /// Delivery settings.
    pub config: Arc<DeliveryConfig>,
    /// Woken when notifications are stored.
    pub wake: Arc<Notify>,
    /// Where attempts are recorded.
    pub recorder: Recorder,
}

impl Dispatcher {
    /// Claims and dispatches until asked to stop, then drains.
    pub(super) async fn run(self, mut stop: StopSignal) {
        let Self {
            store,
            instances,
            outbound,
            config,
            wake,
            recorder,
        } = self;
        let budget = Arc::new(Semaphore::new(config.max_in_flight));
        let hosts = Arc::new(HostLimits::default());
        let mut in_flight = InFlight::default();
        // Long enough to finish an attempt and record it; a crash leaves the
        // notification due again when the lease ends.
        let lease = config.request_timeout + Duration::from_secs(5);
        let mut last_short_claim: Option<Instant> = None;
        loop {
            in_flight.reap();
            if let Some(at) = last_short_claim {
                tokio::select! {
                    () = tokio::time::sleep_until((at + CLAIM_INTERVAL).into()) => {}
                    () = stop_requested(&mut stop) => break,
                }
            }
            if stop.borrow().is_some() {
                break;
            }
            let free = budget.available_permits().min(CLAIM_BATCH as usize) as u32;
            if free == 0 {
                tokio::select! {
                    permit = budget.clone().acquire_owned() => drop(permit),
                    () = stop_requested(&mut stop) => break,
                }
                continue;
            }
            let claimed = match store
                .claim_due(OffsetDateTime::now_utc(), lease, free)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming due notifications failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop_requested(&mut stop) => break,
                    }
                    continue;
                }
            };
            last_short_claim = ((claimed.len() as u32) < free).then(Instant::now);
            if claimed.is_empty() {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    () = stop_requested(&mut stop) => break,
                }
                continue;
            }
            let targets = load_targets(&store, &instances, &claimed).await;
            for n in claimed {
                // Everything claimed is started, even when a stop comes
                // meanwhile: the drain then finishes or abandons it.
                let permit = budget
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("budget is never closed");
                let target = targets.get(&n.instance_id).cloned().flatten();
                let (instances, outbound, config, hosts, recorder) = (
                    instances.clone(),
                    outbound.clone(),
                    config.clone(),
                    hosts.clone(),
                    recorder.clone(),
                );
                in_flight.spawn(n.id.clone(), n.lease.clone(), async move {
                    let record = deliver(
                        &instances,
                        &outbound,
                        &config,
                        &hosts,
                        target.as_deref(),
                        &n,
                    )
                    .await;
                    let _ = recorder.send(record);
                    drop(permit);
                });
            }
            if stop.borrow().is_some() {
                break;
            }
        }
        let deadline = stop.borrow().unwrap_or_else(tokio::time::Instant::now);
        let abandoned = in_flight.drain(deadline).await;
        if !abandoned.is_empty() {
            tracing::warn!(
                deliveries = abandoned.len(),
                "deliveries still in flight at the shutdown deadline abandoned; due again at once"
            );
        }
        for record in abandoned {
            let _ = recorder.send(record);
        }
    }
}

/// The target of every instance in the batch (see [`target::load`]).
async fn load_targets(
    store: &Store,
    instances: &InstanceService,
    claimed: &[DueNotification],
) -> HashMap<i64, Option<Arc<Target>>> {
    let mut out = HashMap::new();
    for n in claimed {
        if let Entry::Vacant(slot) = out.entry(n.instance_id) {
            slot.insert(target::load(store, instances, n.instance_id).await);
        }
    }
    out
}
