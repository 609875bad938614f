//! One delivery attempt as small typed stages: [`prepare`] the signed
//! request, make the HTTP call, and [`judge`] the answer into an
//! [`AttemptRecord`] (delivered, retry at, dead-lettered) for the recorder.
//! Every attempt is counted in the delivery metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::schedule::Failure;
use super::signing;
use super::target::Target;
use super::{DeliveryConfig, MAX_ANSWER_BYTES};
use crate::instance::InstanceService;
use crate::outbound::{FetchError, OutboundClient};
use crate::store::{AttemptNext, AttemptRecord, DueNotification};
use crate::telemetry::metrics::{self, DeliveryOutcome};

/// Per destination host concurrency limits.
#[derive(Default)]
pub(super) struct HostLimits {
    by_host: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    pub(super) fn for_url(&self, url: &url::Url, per_host: usize) -> Arc<Semaphore> {
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

/// One attempt: prepare, call, judge.
#[tracing::instrument(skip_all, fields(event_id = %n.id, instance = n.instance_id, attempt = n.attempts + 1))]
pub(super) async fn deliver(
    instances: &InstanceService,
    outbound: &OutboundClient,
    config: &DeliveryConfig,
    hosts: &HostLimits,
    target: Option<&Target>,
    n: &DueNotification,
) -> AttemptRecord {
    let began = Began::now(n);
    let attempted_at = began.at;
    let Some(url) = target.and_then(|t| t.url.as_ref()) else {
        return judge(
            config,
            &began,
            None,
            Bytes::new(),
            Some("the instance has no callback URL".into()),
            Failure::Other(None),
        );
    };
    let request = match prepare(url, target, &Outgoing::of(n), attempted_at.unix_timestamp()) {
        Ok(r) => r,
        Err(e) => {
            return judge(
                config,
                &began,
                None,
                Bytes::new(),
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
            &began,
            Some(resp.status),
            answer_prefix(&resp.body, config.response_body_bytes),
            None,
            AttemptNext::Delivered,
        ),
        Ok(resp) if resp.status == 410 => {
            let reason = format!("the receiver answered 410 Gone at {attempted_at}");
            tracing::warn!(%reason, "pausing delivery for the instance");
            if let Err(e) = instances.pause_delivery(n.instance_id, reason).await {
                tracing::error!(error = %e, "pausing delivery failed");
            }
            // Due again at once, but claims skip paused instances.
            record(
                &began,
                Some(410),
                answer_prefix(&resp.body, config.response_body_bytes),
                Some("410 Gone: delivery paused".into()),
                AttemptNext::RetryAt(attempted_at),
            )
        }
        Ok(resp) => {
            let retry_after = resp.retry_after_secs();
            let failure = if resp.status == 429 {
                Failure::Throttled(retry_after)
            } else {
                Failure::Other(retry_after)
            };
            let error = format!("receiver answered {}", resp.status);
            judge(
                config,
                &began,
                Some(resp.status),
                answer_prefix(&resp.body, config.response_body_bytes),
                Some(error),
                failure,
            )
        }
        Err(FetchError::Timeout) => judge(
            config,
            &began,
            None,
            Bytes::new(),
            Some("timed out".into()),
            Failure::Timeout,
        ),
        Err(e) => judge(
            config,
            &began,
            None,
            Bytes::new(),
            Some(e.to_string()),
            Failure::Other(None),
        ),
    }
}

/// An attempt under way: the notification, when it started (the time
/// recorded, and the clock its latency is measured on).
struct Began<'a> {
    n: &'a DueNotification,
    at: OffsetDateTime,
    clock: Instant,
}

impl<'a> Began<'a> {
    fn now(n: &'a DueNotification) -> Self {
        Self {
            n,
            at: OffsetDateTime::now_utc(),
            clock: Instant::now(),
        }
    }
}

/// What is sent: a notification's `eventId`, and its stored bytes.
pub(super) struct Outgoing<'a> {
    pub(super) id: &'a str,
    pub(super) content_type: &'a str,
    pub(super) body: &'a Bytes,
}

impl<'a> Outgoing<'a> {
    fn of(n: &'a DueNotification) -> Self {
        Self {
            id: &n.id,
            content_type: &n.content_type,
            body: &n.body,
        }
    }
}

/// The signed POST of a notification's bytes to `url`, with the target's
/// extra headers (validated when the instance was written: they never
/// replace the content type or the signature headers).
pub(super) fn prepare(
    url: &url::Url,
    target: Option<&Target>,
    out: &Outgoing<'_>,
    timestamp: i64,
) -> Result<http::Request<Full<Bytes>>, String> {
    let mut builder = http::Request::post(url.as_str())
        .header(http::header::CONTENT_TYPE, out.content_type)
        .header(
            http::header::USER_AGENT,
            concat!("plugboard/", env!("CARGO_PKG_VERSION")),
        );
    let keys: Vec<&str> = target
        .map(|t| t.keys.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for (name, value) in target.map(|t| t.headers.as_slice()).unwrap_or_default() {
        builder = builder.header(name, value);
    }
    for (name, value) in signing::sign(out.id, timestamp, out.body, &keys).headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(out.body.clone()))
        .map_err(|e| format!("building the request: {e}"))
}

/// A failed attempt: retry per the schedule, or dead-letter.
fn judge(
    config: &DeliveryConfig,
    began: &Began<'_>,
    status: Option<u16>,
    answer: Bytes,
    error: Option<String>,
    failure: Failure,
) -> AttemptRecord {
    let next = match config.schedule.next_delay(began.n.attempts + 1, failure) {
        Some(delay) => AttemptNext::RetryAt(OffsetDateTime::now_utc() + delay),
        None => {
            tracing::warn!(error = ?error, "notification dead-lettered after its last attempt");
            AttemptNext::Dead
        }
    };
    record(began, status, answer, error, next)
}

fn record(
    began: &Began<'_>,
    status_code: Option<u16>,
    response_body: Bytes,
    error: Option<String>,
    next: AttemptNext,
) -> AttemptRecord {
    let elapsed = began.clock.elapsed();
    let outcome = match next {
        AttemptNext::Delivered => DeliveryOutcome::Delivered,
        AttemptNext::RetryAt(_) => DeliveryOutcome::Failed,
        AttemptNext::Dead => DeliveryOutcome::DeadLettered,
    };
    metrics::delivery_attempt(outcome, elapsed);
    AttemptRecord {
        notification_id: began.n.id.clone(),
        lease: began.n.lease.clone(),
        attempted_at: began.at,
        status_code,
        error,
        latency_ms: u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX),
        response_body,
        next,
    }
}

/// The first `limit` bytes of a receiver's answer, kept with the attempt.
/// Text is cut at a character boundary, so a UTF-8 answer stays UTF-8;
/// other bytes are kept as they are.
pub(super) fn answer_prefix(body: &Bytes, limit: usize) -> Bytes {
    if body.len() <= limit {
        return body.clone();
    }
    let cut = match std::str::from_utf8(&body[..limit]) {
        // Only the last character is incomplete: leave it out whole.
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        _ => limit,
    };
    body.slice(..cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_cut_to_its_prefix_at_a_character_boundary() {
        let short = Bytes::from_static(b"ok");
        assert_eq!(answer_prefix(&short, 1024), short);
        let text = Bytes::from("ab\u{e9}cd");
        assert_eq!(answer_prefix(&text, 3), Bytes::from_static(b"ab"));
        assert_eq!(answer_prefix(&text, 4), Bytes::from("ab\u{e9}"));
        let binary = Bytes::from_static(b"\xff\xfe\x00\x01");
        assert_eq!(answer_prefix(&binary, 3).as_ref(), b"\xff\xfe\x00");
        assert!(answer_prefix(&text, 0).is_empty());
    }
}
