//! The dispatcher: claims due notifications under the claim rules (each
//! instance's share and pace, [`super::pacing`]) and runs each one's
//! attempt ([`super::attempt`]) as a task, within the overall and per-host
//! limits, handing every outcome to the recorder. A claimed notification
//! whose destination host has no free slot within [`HAND_BACK_AFTER`] is
//! handed back unattempted, so claims waiting on a saturated host never
//! hold the overall budget for long. Asked to stop, it claims no more,
//! lets the deliveries in flight finish until the deadline, and records the
//! ones it abandons as due again ([`super::in_flight`]).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use super::attempt::{deliver, HostLimits};
use super::in_flight::InFlight;
use super::pacing::Rates;
use super::recorder::Recorder;
use super::target::{self, Target};
use super::DeliveryConfig;
use crate::instance::InstanceService;
use crate::outbound::OutboundClient;
use crate::store::{DueNotification, Store};
use crate::telemetry::metrics;

/// Most notifications claimed at once.
const CLAIM_BATCH: u32 = 512;
/// Least time between two claims that came back short: lets notifications
/// accumulate into batches instead of one claim transaction per webhook.
const CLAIM_INTERVAL: Duration = Duration::from_millis(5);
/// How long the dispatcher sleeps when nothing is due and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Longest a claimed notification waits for a slot of its destination host
/// before it is handed back unattempted.
pub(super) const HAND_BACK_AFTER: Duration = Duration::from_secs(1);
/// When a handed-back notification is due again.
const HANDED_BACK_DUE_IN: Duration = Duration::from_secs(1);

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
    /// The instances' rate limits, for the claim rules.
    pub rates: Rates,
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
            rates,
        } = self;
        rates.reload(&instances).await;
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
            let rules = rates.rules(config.max_in_flight_per_instance);
            let claimed = match store
                .claim(OffsetDateTime::now_utc(), lease, free, rules)
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
            metrics::delivery_held_back(claimed.capped, claimed.paced);
            last_short_claim = ((claimed.due.len() as u32) < free).then(Instant::now);
            if claimed.due.is_empty() {
                // Nothing claimable: wait for new work, a recorded attempt
                // (a share freed) or the next paced instance's turn.
                let idle = claimed.next_paced_at.map_or(IDLE_POLL, |at| {
                    let wait = at - OffsetDateTime::now_utc();
                    Duration::try_from(wait).unwrap_or_default().min(IDLE_POLL)
                });
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(idle) => {}
                    () = stop_requested(&mut stop) => break,
                }
                continue;
            }
            let claimed = claimed.due;
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
                let (store, instances, outbound, config, hosts, recorder) = (
                    store.clone(),
                    instances.clone(),
                    outbound.clone(),
                    config.clone(),
                    hosts.clone(),
                    recorder.clone(),
                );
                in_flight.spawn(n.id.clone(), n.lease.clone(), async move {
                    let url = target.as_ref().and_then(|t| t.url.as_ref());
                    let Some(slot) = host_slot(&hosts, url, config.per_host).await else {
                        hand_back(&store, &n).await;
                        drop(permit);
                        return;
                    };
                    let record =
                        deliver(&instances, &outbound, &config, target.as_deref(), &n).await;
                    drop(slot);
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

/// A slot of the destination host of `url` (`Some(None)` without a URL:
/// the attempt fails at once), or `None` if none came free within
/// [`HAND_BACK_AFTER`].
async fn host_slot(
    hosts: &HostLimits,
    url: Option<&url::Url>,
    per_host: usize,
) -> Option<Option<OwnedSemaphorePermit>> {
    let Some(url) = url else {
        return Some(None);
    };
    let limit = hosts.for_url(url, per_host);
    match tokio::time::timeout(HAND_BACK_AFTER, limit.acquire_owned()).await {
        Ok(slot) => Some(Some(slot.expect("host limits are never closed"))),
        Err(_) => None,
    }
}

/// Hands a claimed notification back unattempted, due again shortly; if
/// that cannot be written, its lease ends and it is due again then.
async fn hand_back(store: &Store, n: &DueNotification) {
    let due = OffsetDateTime::now_utc() + HANDED_BACK_DUE_IN;
    match store
        .hand_back(vec![(n.id.clone(), n.lease.clone())], due)
        .await
    {
        Ok(back) => metrics::delivery_handed_back(back),
        Err(e) => {
            tracing::warn!(event_id = %n.id, error = %e, "handing back a notification failed")
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
