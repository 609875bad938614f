//! A test notification: sent once, at once, to an instance's callback URL,
//! signed and with its extra headers like every notification, through the
//! same outbound policy, so a receiver's setup and signature verification
//! can be checked. It is marked as a test in its body, is not stored, and
//! is neither retried nor counted; what the receiver answered is returned.

use bytes::Bytes;
use time::OffsetDateTime;

use super::attempt::{answer_prefix, prepare, Outgoing};
use super::{target, DeliveryConfig, MAX_ANSWER_BYTES};
use crate::accept::notification;
use crate::accept::InstanceInfo;
use crate::instance::InstanceService;
use crate::outbound::{FetchError, OutboundClient};
use crate::store::Store;

/// What became of a test notification.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// The test notification's `eventId` (its `webhook-id`).
    pub event_id: String,
    /// Where it was sent.
    pub url: String,
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// Time until the answer (or the failure).
    pub latency_ms: u64,
    /// The first bytes of the receiver's answer.
    pub response_body: Bytes,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// Why no test notification was sent.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// No such instance.
    #[error("no instance {0}")]
    NotFound(i64),
    /// The instance has no callback URL to send to.
    #[error("instance {0} has no event.notification.callback.url to send a test notification to")]
    NoCallbackUrl(i64),
    /// The store could not be read.
    #[error("reading the instance failed: {0}")]
    Store(String),
}

/// What a test send needs from the delivery worker.
#[derive(Clone)]
pub(super) struct Tester {
    pub(super) store: Store,
    pub(super) instances: InstanceService,
    pub(super) outbound: OutboundClient,
    pub(super) config: std::sync::Arc<DeliveryConfig>,
}

impl Tester {
    /// Sends one test notification to `instance_id`'s callback URL.
    pub(super) async fn send(&self, instance_id: i64) -> Result<TestOutcome, TestError> {
        let configured = self
            .instances
            .load(instance_id)
            .await
            .map_err(|e| TestError::Store(e.to_string()))?
            .ok_or(TestError::NotFound(instance_id))?;
        let target = target::load(&self.store, &self.instances, instance_id).await;
        let Some(url) = target.as_ref().and_then(|t| t.url.clone()) else {
            return Err(TestError::NoCallbackUrl(instance_id));
        };
        let stored = &configured.instance;
        let info = InstanceInfo {
            id: instance_id,
            name: &stored.name,
            tags: &stored.tags,
            element_key: &stored.element_key,
        };
        let format = configured.settings.format;
        let now = OffsetDateTime::now_utc();
        let prepared = notification::test(&info, format, now);
        let body = Bytes::from(prepared.body);
        let outgoing = Outgoing {
            id: &prepared.id,
            content_type: format.content_type(),
            body: &body,
        };
        let outcome =
            |status_code, response_body, error: Option<String>, began: std::time::Instant| {
                TestOutcome {
                    event_id: prepared.id.clone(),
                    url: url.to_string(),
                    delivered: error.is_none(),
                    status_code,
                    latency_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
                    response_body,
                    error,
                }
            };
        let began = std::time::Instant::now();
        let request = match prepare(&url, target.as_deref(), &outgoing, now.unix_timestamp()) {
            Ok(r) => r,
            Err(e) => return Ok(outcome(None, Bytes::new(), Some(e), began)),
        };
        let answer = self
            .outbound
            .send(request, self.config.request_timeout, MAX_ANSWER_BYTES)
            .await;
        let limit = self.config.response_body_bytes;
        Ok(match answer {
            Ok(resp) if resp.is_success() => outcome(
                Some(resp.status),
                answer_prefix(&resp.body, limit),
                None,
                began,
            ),
            Ok(resp) => outcome(
                Some(resp.status),
                answer_prefix(&resp.body, limit),
                Some(format!("receiver answered {}", resp.status)),
                began,
            ),
            Err(FetchError::Timeout) => {
                outcome(None, Bytes::new(), Some("timed out".into()), began)
            }
            Err(e) => outcome(None, Bytes::new(), Some(e.to_string()), began),
        })
    }
}
