//! Signed, durable, at-least-once delivery of notifications to each
//! instance's callback URL.
//!
//! Notifications enter the outbox in the same transaction as the receipt
//! they come from ([`crate::accept`] builds them when the events are accepted).
//! The dispatcher claims due notifications (a lease, so a crash leaves them
//! due again), signs the stored bytes ([`signing`]) and sends them through
//! the outbound policy; the recorder writes every attempt and its
//! consequence (delivered, retry at, dead-lettered) in batches.
//!
//! Guarantees:
//! - **At least once.** A notification leaves the outbox only after a 2xx.
//!   A crash between sending and recording sends it again, with the same
//!   `eventId` (receivers de-duplicate on `webhook-id` / `Elements-Webhook-Id`).
//! - **Ordering only where asked for.** By default notifications are sent
//!   oldest-due first, several in flight at once, and a retry holds back
//!   nothing; receivers order by each event's `date`. An instance with
//!   `event.notification.ordered` gets one notification per object, and of
//!   the unsettled notifications about one object exactly one is due or in
//!   flight at a time, in the order they were accepted; a retrying one holds
//!   back only its own object, and the next goes when it is delivered or
//!   dead-lettered (the store keeps the line; the README states the guarantee).
//! - **Bounded pressure, fair shares.** At most `max_in_flight` requests
//!   overall, `per_host` per destination host and
//!   `max_in_flight_per_instance` per instance. The per-instance cap is
//!   kept by the claim itself (an instance's notifications under a lease,
//!   on any replica, count against it), so a slow or failing receiver
//!   holds at most its share of claims and slots and the others' deliveries
//!   go meanwhile; a claimed notification whose host has no free slot
//!   within [`dispatch::HAND_BACK_AFTER`] is handed back unattempted.
//! - **Pacing.** An instance's `event.notification.rate_limit` (requests
//!   per second) is kept by the claim too, with its pace in the database:
//!   retries, redeliveries and every replica draw on it (the README states
//!   the guarantee). 3xx is a failure (redirects are never followed); 410 Gone
//!   pauses the instance's delivery until events are switched on again.
//! - **Instances through the service.** Each claim batch reads its
//!   instances' typed settings (callback URL, signing key) from the
//!   [`InstanceService`]; the 410 pause is written through it; and delivery
//!   follows its change channel, waking the dispatcher on every change (so a
//!   delivery resumed by switching events on starts at once).
//! - **Graceful stop.** [`Delivery::stop`] claims nothing more, lets the
//!   deliveries in flight finish until a deadline, records the ones still
//!   running then as due again at once, and returns once every attempt is
//!   written.

mod attempt;
mod dispatch;
mod in_flight;
mod pacing;
mod recorder;
pub mod schedule;
pub mod signing;
mod target;
mod test_send;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::cluster::{Cluster, MAINTENANCE};
use crate::instance::service::Received;
use crate::instance::InstanceService;
use crate::outbound::OutboundClient;
use crate::store::Store;

pub use schedule::RetrySchedule;
pub use test_send::{TestError, TestOutcome};

/// Largest receiver answer read; more fails the attempt as too large. The
/// answer's first [`DeliveryConfig::response_body_bytes`] are kept.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Delivery settings.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Deadline of one delivery request.
    pub request_timeout: Duration,
    /// When failed deliveries are tried again, and how many times.
    pub schedule: RetrySchedule,
    /// Most requests in flight to one destination host.
    pub per_host: usize,
    /// Most requests in flight overall.
    pub max_in_flight: usize,
    /// Most notifications of one instance in flight (claimed and not yet
    /// recorded) at once, across replicas.
    pub max_in_flight_per_instance: usize,
    /// How long delivered notifications are kept in the event log.
    pub retention: Duration,
    /// How long a replaced signing key keeps signing alongside the new one.
    pub key_grace: Duration,
    /// How many bytes of each receiver answer are kept with the attempt
    /// (at most [`MAX_ANSWER_BYTES`]).
    pub response_body_bytes: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            schedule: RetrySchedule::default(),
            per_host: 64,
            max_in_flight: 512,
            max_in_flight_per_instance: 256,
            retention: Duration::from_secs(7 * 24 * 3600),
            key_grace: Duration::from_secs(24 * 3600),
            response_body_bytes: 1024,
        }
    }
}

/// A handle to the running delivery worker.
#[derive(Clone)]
pub struct Delivery {
    wake: Arc<Notify>,
    tester: test_send::Tester,
    stop: Arc<watch::Sender<Option<tokio::time::Instant>>>,
    tasks: Arc<Mutex<Option<Tasks>>>,
}

struct Tasks {
    dispatcher: tokio::task::JoinHandle<()>,
    recorder: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
    follower: tokio::task::JoinHandle<()>,
}

impl Delivery {
    /// Starts the dispatcher, the attempt recorder, the pruner and the
    /// follower of instance changes.
    pub fn start(
        store: Store,
        instances: InstanceService,
        outbound: OutboundClient,
        cluster: Cluster,
        config: DeliveryConfig,
    ) -> Self {
        let wake = Arc::new(Notify::new());
        let rates = pacing::Rates::default();
        let changes = instances.subscribe();
        let follower = tokio::spawn(follow(
            instances.clone(),
            changes,
            wake.clone(),
            rates.clone(),
        ));
        let config = Arc::new(config);
        let (stop, stop_rx) = watch::channel(None);
        let (recorder, recorder_task) = recorder::start(store.clone(), wake.clone());
        let tester = test_send::Tester {
            store: store.clone(),
            instances: instances.clone(),
            outbound: outbound.clone(),
            config: config.clone(),
        };
        let dispatcher = dispatch::Dispatcher {
            store: store.clone(),
            instances,
            outbound,
            config: config.clone(),
            wake: wake.clone(),
            recorder,
            rates,
        };
        let tasks = Tasks {
            dispatcher: tokio::spawn(dispatcher.run(stop_rx)),
            recorder: recorder_task,
            pruner: tokio::spawn(prune(store, cluster, config.retention)),
            follower,
        };
        Self {
            wake,
            tester,
            stop: Arc::new(stop),
            tasks: Arc::new(Mutex::new(Some(tasks))),
        }
    }

    /// Sends a test notification to `instance_id`'s callback URL now and
    /// returns what the receiver answered (see [`test_send`]).
    pub async fn send_test(&self, instance_id: i64) -> Result<TestOutcome, TestError> {
        self.tester.send(instance_id).await
    }

    /// Tells the dispatcher new notifications are due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops delivering: nothing more is claimed, deliveries in flight may
    /// finish until `deadline`, the ones still running then are abandoned
    /// and recorded as due again. Returns once every attempt is recorded.
    pub async fn stop(&self, deadline: tokio::time::Instant) {
        let Some(tasks) = self.tasks.lock().expect("delivery tasks lock").take() else {
            return;
        };
        tasks.pruner.abort();
        tasks.follower.abort();
        let _ = self.stop.send(Some(deadline));
        if let Err(e) = tasks.dispatcher.await {
            tracing::error!(error = %e, "the delivery dispatcher failed");
        }
        // Every sender is gone now: the recorder writes what is left and ends.
        if let Err(e) = tasks.recorder.await {
            tracing::error!(error = %e, "the delivery recorder failed");
        }
    }
}

/// Wakes the dispatcher on every instance change: a change may make
/// notifications deliverable (a paused delivery resumed, a callback fixed);
/// and keeps the instances' rate limits current for the claims.
async fn follow(
    instances: InstanceService,
    mut changes: crate::instance::service::Subscription,
    wake: Arc<Notify>,
    rates: pacing::Rates,
) {
    loop {
        match changes.recv().await {
            Received::Change(notice) => {
                let change = notice.change;
                rates
                    .refresh(&instances, change.id, change.version.is_none())
                    .await;
                wake.notify_one();
                notice.applied();
            }
            Received::Missed => {
                rates.reload(&instances).await;
                wake.notify_one();
            }
            Received::Closed => return,
        }
    }
}

/// Whether this replica runs maintenance now; a replica that does not yet
/// know (its first heartbeat is still under way at start) waits up to a
/// lease length for its holdings before answering.
async fn holds_maintenance(cluster: &Cluster) -> bool {
    if cluster.holds_singleton(MAINTENANCE) {
        return true;
    }
    let mut holdings = cluster.subscribe();
    let wait = holdings.wait_for(|h| h.singletons.contains(MAINTENANCE));
    tokio::time::timeout(cluster.config().lease, wait)
        .await
        .is_ok_and(|held| held.is_ok())
}

/// Hourly, deletes what is older than the retention and no longer needed
/// (see [`Store::prune`]), on the one replica holding the maintenance
/// lease at that moment.
async fn prune(store: Store, cluster: Cluster, retention: Duration) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        if !holds_maintenance(&cluster).await {
            continue;
        }
        let before = time::OffsetDateTime::now_utc() - retention;
        match store.prune(before).await {
            Ok(p) if p == Default::default() => {}
            Ok(p) => tracing::info!(
                receipts = p.receipts,
                notifications = p.notifications,
                "pruned what is older than the retention"
            ),
            Err(e) => tracing::warn!(error = %e, "pruning failed"),
        }
    }
}
