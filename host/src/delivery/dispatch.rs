//! The dispatcher: claims due notifications, and for each one prepares the
//! signed request, makes the HTTP call, and hands the outcome (delivered,
//! retry at, dead-lettered) to the recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

use super::recorder::Recorder;
use super::schedule::{parse_retry_after, Failure};
use super::signing;
use super::DeliveryConfig;
use crate::instance::EventSettings;
use crate::outbound::{FetchError, OutboundClient};
use crate::store::{AttemptNext, AttemptRecord, DueNotification, InstancePatch, Store};

/// Most notifications claimed at once.
const CLAIM_BATCH: u32 = 512;
/// Least time between two claims that came back short: lets notifications
/// accumulate into batches instead of one claim transaction per webhook.
const CLAIM_INTERVAL: Duration = Duration::from_millis(5);
/// How long the dispatcher sleeps when nothing is due and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Largest receiver answer read (the body is only kept for errors).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Where and how one instance's notifications go.
struct Target {
    url: Option<url::Url>,
    keys: Vec<String>,
}

/// Per destination host concurrency limits.
#[derive(Default)]
struct HostLimits {
    by_host: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    fn for_url(&self, url: &url::Url, per_host: usize) -> Arc<Semaphore> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        self.by_host
            .lock()
            .expect("host limits lock")
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(per_host)))
            .clone()
    }
}

/// Claims and dispatches until the task is aborted.
pub(super) async fn run(
    store: Store,
    outbound: OutboundClient,
    config: Arc<DeliveryConfig>,
    wake: Arc<Notify>,
    recorder: Recorder,
) {
    let budget = Arc::new(Semaphore::new(config.max_in_flight));
    let hosts = Arc::new(HostLimits::default());
    // Long enough to finish an attempt and record it; a crash leaves the
    // notification due again when the lease ends.
    let lease = config.request_timeout + Duration::from_secs(5);
    let mut last_short_claim: Option<Instant> = None;
    loop {
        if let Some(at) = last_short_claim {
            tokio::time::sleep_until((at + CLAIM_INTERVAL).into()).await;
        }
        let free = budget.available_permits().min(CLAIM_BATCH as usize) as u32;
        if free == 0 {
            drop(budget.clone().acquire_owned().await);
            continue;
        }
        let claimed = match store
            .claim_due(OffsetDateTime::now_utc(), lease, free)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "claiming due notifications failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        last_short_claim = ((claimed.len() as u32) < free).then(Instant::now);
        if claimed.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let targets = load_targets(&store, &claimed).await;
        for n in claimed {
            let permit = budget
                .clone()
                .acquire_owned()
                .await
                .expect("budget is never closed");
            let target = targets.get(&n.instance_id).cloned().flatten();
            let (store, outbound, config, hosts, recorder) = (
                store.clone(),
                outbound.clone(),
                config.clone(),
                hosts.clone(),
                recorder.clone(),
            );
            tokio::spawn(async move {
                let record =
                    deliver(&store, &outbound, &config, &hosts, target.as_deref(), &n).await;
                let _ = recorder.send(record);
                drop(permit);
            });
        }
    }
}

/// Reads the callback URL and signing keys of every instance in the batch.
async fn load_targets(
    store: &Store,
    claimed: &[DueNotification],
) -> HashMap<i64, Option<Arc<Target>>> {
    let mut out = HashMap::new();
    for n in claimed {
        if out.contains_key(&n.instance_id) {
            continue;
        }
        let target = match store.get_instance(n.instance_id).await {
            Ok(Some(instance)) => {
                let settings = EventSettings::parse(&instance.configuration).ok();
                let mut keys: Vec<String> = settings
                    .as_ref()
                    .and_then(|s| s.signature_key.clone())
                    .into_iter()
                    .collect();
                keys.extend(store.retired_keys(n.instance_id).await.unwrap_or_default());
                Some(Arc::new(Target {
                    url: settings.and_then(|s| s.callback_url),
                    keys,
                }))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(instance = n.instance_id, error = %e, "reading instance for delivery failed");
                None
            }
        };
        out.insert(n.instance_id, target);
    }
    out
}

/// One attempt: prepare, call, judge.
#[tracing::instrument(skip_all, fields(event_id = %n.id, instance = n.instance_id, attempt = n.attempts + 1))]
async fn deliver(
    store: &Store,
    outbound: &OutboundClient,
    config: &DeliveryConfig,
    hosts: &HostLimits,
    target: Option<&Target>,
    n: &DueNotification,
) -> AttemptRecord {
    let attempted_at = OffsetDateTime::now_utc();
    let started = Instant::now();
    let Some(url) = target.and_then(|t| t.url.as_ref()) else {
        return judge(
            config,
            n,
            attempted_at,
            started,
            None,
            Some("the instance has no callback URL".into()),
            Failure::Other(None),
        );
    };
    let keys: Vec<&str> = target
        .map(|t| t.keys.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let request = match prepare(url, n, attempted_at.unix_timestamp(), &keys) {
        Ok(r) => r,
        Err(e) => {
            return judge(
                config,
                n,
                attempted_at,
                started,
                None,
                Some(e),
                Failure::Other(None),
            )
        }
    };
    let limit = hosts.for_url(url, config.per_host);
    let _slot = limit
        .acquire_owned()
        .await
        .expect("host limits are never closed");
    match outbound
        .send(request, config.request_timeout, MAX_ANSWER_BYTES)
        .await
    {
        Ok(resp) if resp.is_success() => record(
            n,
            attempted_at,
            started,
            Some(resp.status),
            None,
            AttemptNext::Delivered,
        ),
        Ok(resp) if resp.status == 410 => {
            let reason = format!("the receiver answered 410 Gone at {attempted_at}");
            tracing::warn!(%reason, "pausing delivery for the instance");
            let patch = InstancePatch {
                delivery_paused: Some(Some(reason)),
                ..InstancePatch::default()
            };
            if let Err(e) = store.update_instance(n.instance_id, patch).await {
                tracing::error!(error = %e, "pausing delivery failed");
            }
            // Due again at once, but claims skip paused instances.
            record(
                n,
                attempted_at,
                started,
                Some(410),
                Some("410 Gone: delivery paused".into()),
                AttemptNext::RetryAt(attempted_at),
            )
        }
        Ok(resp) => {
            let retry_after = parse_retry_after(resp.header("retry-after"));
            let failure = if resp.status == 429 {
                Failure::Throttled(retry_after)
            } else {
                Failure::Other(retry_after)
            };
            let error = format!("receiver answered {}", resp.status);
            judge(
                config,
                n,
                attempted_at,
                started,
                Some(resp.status),
                Some(error),
                failure,
            )
        }
        Err(FetchError::Timeout) => judge(
            config,
            n,
            attempted_at,
            started,
            None,
            Some("timed out".into()),
            Failure::Timeout,
        ),
        Err(e) => judge(
            config,
            n,
            attempted_at,
            started,
            None,
            Some(e.to_string()),
            Failure::Other(None),
        ),
    }
}

/// The signed POST of a notification's stored bytes.
fn prepare(
    url: &url::Url,
    n: &DueNotification,
    timestamp: i64,
    keys: &[&str],
) -> Result<http::Request<Full<Bytes>>, String> {
    let mut builder = http::Request::post(url.as_str())
        .header(http::header::CONTENT_TYPE, &n.content_type)
        .header(
            http::header::USER_AGENT,
            concat!("plugboard/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in signing::sign(&n.id, timestamp, &n.body, keys).headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(n.body.clone()))
        .map_err(|e| format!("building the request: {e}"))
}

/// A failed attempt: retry per the schedule, or dead-letter.
fn judge(
    config: &DeliveryConfig,
    n: &DueNotification,
    attempted_at: OffsetDateTime,
    started: Instant,
    status: Option<u16>,
    error: Option<String>,
    failure: Failure,
) -> AttemptRecord {
    let next = match config.schedule.next_delay(n.attempts + 1, failure) {
        Some(delay) => AttemptNext::RetryAt(OffsetDateTime::now_utc() + delay),
        None => {
            tracing::warn!(error = ?error, "notification dead-lettered after its last attempt");
            AttemptNext::Dead
        }
    };
    record(n, attempted_at, started, status, error, next)
}

fn record(
    n: &DueNotification,
    attempted_at: OffsetDateTime,
    started: Instant,
    status_code: Option<u16>,
    error: Option<String>,
    next: AttemptNext,
) -> AttemptRecord {
    AttemptRecord {
        notification_id: n.id.clone(),
        attempted_at,
        status_code,
        error,
        latency_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
        next,
    }
}
