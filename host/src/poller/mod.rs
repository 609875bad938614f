//! Polling (SPEC §6): timer → poll → plugin → store → delivery, for every
//! instance with `event.vendor.type: polling` and events on.
//!
//! - [`scheduler`] decides when each instance is due (spread, no drift,
//!   one poll of an instance at a time, reloads on change);
//! - [`run`] polls an instance's resources in turn and keeps their status
//!   and backoff;
//! - [`page`] reads one resource's window page by page through the
//!   element's `prepare-poll` / `map-poll` (or the generic [`mapping`]) and
//!   the outbound policy; [`store_page`] stores each page's events and
//!   notifications, and the checkpoint with the last page, in one
//!   transaction;
//! - [`plan`] works out once per instance version what polling it takes;
//!   the poll configuration itself (resources, URL templates, Java date
//!   patterns, time zones) is read by [`crate::instance::resources`].
//!
//! With several replicas on one database, this replica schedules only the
//! instances of the partitions it holds ([`crate::cluster`]), re-reading
//! the instance list whenever that set changes; each page is written under
//! the fence its poll started with, and a fenced page drops the instance
//! from this replica's schedule.
//!
//! Guarantee: a resource's checkpoint moves only together with the events
//! of the window it closes. A crash, a vendor error or a store failure
//! leaves it where it was, and the next poll reads the window again
//! (duplicates possible, gaps not).

mod error;
pub mod mapping;
mod page;
pub mod plan;
pub(crate) mod reading;
mod run;
mod scheduler;
pub mod status;
mod store_page;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

use crate::cluster::Cluster;
use crate::delivery::Delivery;
use crate::instance::service::Received;
use crate::instance::InstanceService;
use crate::outbound::OutboundClient;
use crate::registry::Registry;
use crate::store::Store;

pub use error::PollError;
pub use status::{InstanceStatus, PollerStats, ResourceStatus};

/// Settings of the poller.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// Shortest polling period: a shorter `event.poller.refresh_interval`
    /// is raised to it. A minute by default; tests and demos lower it to
    /// poll every few seconds (the refresh interval may be fractional).
    pub min_interval: Duration,
    /// Most instances polled at once.
    pub concurrency: usize,
    /// Deadline of one request to a vendor.
    pub request_timeout: Duration,
    /// Largest vendor answer read.
    pub max_response_bytes: usize,
    /// Most pages one poll of a resource reads.
    pub max_pages: u32,
    /// How often the instance list is re-read besides change notices.
    pub reload_interval: Duration,
    /// Longest backoff after failures (at least one interval).
    pub max_backoff: Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(60),
            concurrency: 64,
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 16 << 20,
            max_pages: 1000,
            reload_interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// State shared by the scheduler, running polls and the API.
pub(crate) struct Shared {
    store: Store,
    instances: InstanceService,
    registry: Arc<Registry>,
    outbound: OutboundClient,
    delivery: Delivery,
    cluster: Cluster,
    config: PollerConfig,
    entries: RwLock<HashMap<i64, Arc<run::Entry>>>,
    counters: status::Counters,
    slots: Semaphore,
}

impl Shared {
    fn entry(&self, id: i64) -> Option<Arc<run::Entry>> {
        self.entries.read().expect("entries lock").get(&id).cloned()
    }
}

/// A handle to the running poller. Cheap to clone.
#[derive(Clone)]
pub struct Poller {
    shared: Arc<Shared>,
    /// Keeps the scheduler's command channel open while the poller lives.
    _commands: mpsc::UnboundedSender<scheduler::Command>,
    task: Arc<tokio::task::JoinHandle<()>>,
    follower: Arc<tokio::task::JoinHandle<()>>,
}

impl Poller {
    /// Starts the scheduler (it reads the instance list at once) and the
    /// follower of `instances`' change channel.
    pub fn start(
        store: Store,
        instances: InstanceService,
        registry: Arc<Registry>,
        outbound: OutboundClient,
        delivery: Delivery,
        cluster: Cluster,
        config: PollerConfig,
    ) -> Self {
        let mut changes = instances.subscribe();
        let shared = Arc::new(Shared {
            store,
            instances,
            registry,
            outbound,
            delivery,
            cluster,
            slots: Semaphore::new(config.concurrency.max(1)),
            config,
            entries: RwLock::default(),
            counters: status::Counters::default(),
        });
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(scheduler::run(shared.clone(), receiver));
        let to_scheduler = commands.clone();
        let follower = tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Received::Change(notice) => {
                        instance_changed(&to_scheduler, notice.change.id).await;
                        notice.applied();
                    }
                    Received::Missed => {
                        let _ = to_scheduler.send(scheduler::Command::ReloadAll);
                    }
                    Received::Closed => return,
                }
            }
        });
        Self {
            shared,
            _commands: commands,
            task: Arc::new(task),
            follower: Arc::new(follower),
        }
    }

    /// The status of a polled instance; `None` when it is not polled.
    pub fn status(&self, id: i64) -> Option<InstanceStatus> {
        self.shared.entry(id).map(|e| e.status())
    }

    /// Polls the instance now (after any poll of it in progress) and returns
    /// its status afterwards; `None` when it is not polled.
    pub async fn run_now(&self, id: i64) -> Option<InstanceStatus> {
        let entry = self.shared.entry(id)?;
        run::run(self.shared.clone(), entry.clone(), run::Trigger::Manual).await;
        Some(entry.status())
    }

    /// Runs the polls other replicas hand to this one: every
    /// `(plugboard_poll_run, "<id>")` notification from `requests` (the
    /// database's notifications, as the listening connection broadcasts
    /// them) starts a manual poll of that instance if this replica polls
    /// it; others are ignored (their owner runs them). Ends when the
    /// broadcast closes.
    pub fn follow_run_requests(
        &self,
        mut requests: tokio::sync::broadcast::Receiver<crate::store::Notification>,
    ) {
        use crate::store::Notification;
        use tokio::sync::broadcast::error::RecvError;
        let shared = self.shared.clone();
        tokio::spawn(async move {
            loop {
                let (channel, payload) = match requests.recv().await {
                    Ok(Notification::Message { channel, payload }) => (channel, payload),
                    // Requests sent while the connection was down are gone;
                    // the next scheduled poll covers them.
                    Ok(Notification::Resync) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "run-now requests missed");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                if channel != crate::cluster::POLL_RUN_CHANNEL {
                    continue;
                }
                let Ok(id) = payload.parse::<i64>() else {
                    continue;
                };
                if let Some(entry) = shared.entry(id) {
                    tracing::info!(instance = id, "polling now, as another replica asked");
                    tokio::spawn(run::run(shared.clone(), entry, run::Trigger::Manual));
                }
            }
        });
    }

    /// Counters and recent scheduling lags; `drain` empties the lag samples.
    pub fn stats(&self, drain: bool) -> PollerStats {
        let instances = self.shared.entries.read().expect("entries lock").len();
        self.shared.counters.snapshot(instances, drain)
    }

    /// Stops scheduling (polls in progress are abandoned; their windows are
    /// read again by the next start).
    pub fn stop(&self) {
        self.follower.abort();
        self.task.abort();
    }
}

/// Tells the scheduler instance `id` was created, changed or deleted, and
/// waits until it has re-read the instance, so the instance's poller status
/// reflects the change when this returns.
async fn instance_changed(commands: &mpsc::UnboundedSender<scheduler::Command>, id: i64) {
    let (done, applied) = tokio::sync::oneshot::channel();
    if commands.send(scheduler::Command::Changed(id, done)).is_ok() {
        let _ = applied.await;
    }
}
