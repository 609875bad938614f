//! Signed webhook load spread round-robin across replicas, as a load
//! balancer would spread a vendor's callbacks, and the accounting the
//! replica tests assert on: which events were acknowledged (answered 200),
//! and how often each reached the receiver.
//!
//! A callback a replica does not answer with 200 (it is down, frozen or
//! its database is) is offered to the next replica, once each, like a
//! balancer retrying another backend; if none takes it, it is not owed
//! (the vendor would send it again later).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::connectwise::FakeConnectWise;
use super::receiver::Receiver;
use super::replicas::send_callback;
use super::wait_until;

/// What a load run was told: every event id acknowledged with 200, and by
/// which replica.
#[derive(Clone, Debug, Default)]
pub struct Acknowledged {
    /// Event id → index of the replica that acknowledged it.
    pub events: HashMap<String, usize>,
}

impl Acknowledged {
    /// How many events each replica acknowledged.
    pub fn per_replica(&self, replicas: usize) -> Vec<usize> {
        let mut counts = vec![0; replicas];
        for i in self.events.values() {
            counts[*i] += 1;
        }
        counts
    }

    /// The acknowledged event ids.
    pub fn ids(&self) -> HashSet<String> {
        self.events.keys().cloned().collect()
    }
}

/// Signed callbacks being sent by `writers` tasks until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Acknowledged>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `writers` tasks sending distinct signed callbacks (message
    /// ids `{tag}-{writer}-{n}`) to `path`, each to the next replica of
    /// `bases` in turn.
    pub fn start(
        bases: Vec<String>,
        path: String,
        cw: Arc<FakeConnectWise>,
        writers: usize,
        tag: &str,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let tasks = (0..writers)
            .map(|w| {
                let (stop, acknowledged, client) =
                    (stop.clone(), acknowledged.clone(), client.clone());
                let (bases, path, cw, tag) =
                    (bases.clone(), path.clone(), cw.clone(), tag.to_string());
                tokio::spawn(async move {
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let message_id = format!("{tag}-{w}-{n}");
                        let taken = offer(
                            &client,
                            &cw,
                            &bases,
                            (w + n) % bases.len(),
                            &path,
                            &message_id,
                        )
                        .await;
                        match taken {
                            Some((replica, ids)) => {
                                let mut ack = acknowledged.lock().unwrap();
                                for id in ids {
                                    ack.events.insert(id, replica);
                                }
                            }
                            None => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            acknowledged,
            tasks,
        }
    }

    /// How many events were acknowledged so far.
    pub fn count(&self) -> usize {
        self.acknowledged.lock().unwrap().events.len()
    }

    /// Waits until more than `before` events are acknowledged (the
    /// replicas take webhooks again), or panics after `deadline`.
    pub async fn wait_beyond(&self, before: usize, deadline: Duration, what: &str) {
        wait_until(what, deadline, || async {
            (self.count() > before).then_some(())
        })
        .await
    }

    /// Stops sending; returns what was acknowledged.
    pub async fn stop(self) -> Acknowledged {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let ack = self.acknowledged.lock().unwrap().clone();
        ack
    }
}

/// Offers one callback to the replicas from `first` on; the replica that
/// took it and the event ids it acknowledged.
async fn offer(
    client: &reqwest::Client,
    cw: &FakeConnectWise,
    bases: &[String],
    first: usize,
    path: &str,
    message_id: &str,
) -> Option<(usize, Vec<String>)> {
    for k in 0..bases.len() {
        let i = (first + k) % bases.len();
        if let Some((200, answer)) = send_callback(client, cw, &bases[i], path, message_id).await {
            let ids = answer["eventIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            return Some((i, ids));
        }
    }
    None
}

/// How many times each `webhook-id` reached the receiver so far.
pub fn deliveries(receiver: &Receiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in receiver.received() {
        *counts
            .entry(r.header("webhook-id").to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// Waits until every event of `owed` reached the receiver; returns how
/// many times each `webhook-id` arrived. Panics naming how many are
/// missing after `deadline`.
pub async fn wait_all_delivered(
    receiver: &Receiver,
    owed: &HashSet<String>,
    deadline: Duration,
) -> HashMap<String, usize> {
    let start = std::time::Instant::now();
    loop {
        let counts = deliveries(receiver);
        let missing = owed.iter().filter(|id| !counts.contains_key(*id)).count();
        if missing == 0 {
            return counts;
        }
        assert!(
            start.elapsed() < deadline,
            "{missing} of {} acknowledged events not delivered after {deadline:?}",
            owed.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
