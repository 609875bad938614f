//! What the inbound log needs to know of a request while it is handled:
//! taken cheaply up front (the header map's clone shares its bytes) and
//! turned into a log entry only when the request leaves no receipt.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::store::{InboundOutcome, NewInboundEntry};

/// An error answer's code and message, attached to the response so the log
/// can say why a request was refused.
#[derive(Clone)]
pub(super) struct Refusal {
    pub(super) code: &'static str,
    pub(super) message: String,
}

/// A request being handled, as the inbound log will record it.
pub(super) struct Seen {
    /// When it arrived.
    pub(super) received_at: OffsetDateTime,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// Its body, once read.
    pub(super) body: Option<Bytes>,
    /// Whether it left a receipt (its entry in the log).
    pub(super) receipt: bool,
    /// What became of it when it left no receipt.
    pub(super) outcome: InboundOutcome,
    /// For a duplicate, the receipt it repeats.
    pub(super) receipt_id: Option<String>,
}

impl Seen {
    /// The parts of `request` the log keeps.
    pub(super) fn new(request: &Request) -> Self {
        Self {
            received_at: OffsetDateTime::now_utc(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            body: None,
            receipt: false,
            outcome: InboundOutcome::Rejected,
            receipt_id: None,
        }
    }

    /// The log entry of this request, answered with `response`: secret
    /// headers redacted, the body cut to `body_limit` bytes.
    pub(super) fn entry(
        self,
        body_limit: usize,
        instance_id: i64,
        element_key: &str,
        response: &Response,
    ) -> NewInboundEntry {
        let refusal = response.extensions().get::<Refusal>();
        let reason = match (self.outcome, &self.receipt_id, refusal) {
            (_, _, Some(r)) => Some(r.message.clone()),
            (InboundOutcome::Duplicate, Some(of), _) => Some(format!("duplicate of receipt {of}")),
            (InboundOutcome::Responded, ..) => Some("answered by the element plugin".to_owned()),
            _ => None,
        };
        let headers = super::redact::headers(&super::request::header_pairs(&self.headers));
        NewInboundEntry {
            instance_id,
            element_key: element_key.to_owned(),
            received_at: self.received_at,
            outcome: self.outcome,
            status: response.status().as_u16(),
            code: refusal.map(|r| r.code.to_owned()),
            reason,
            method: self.method.to_string(),
            path: self.uri.path().to_owned(),
            headers,
            body_bytes: self.body.as_ref().map(|b| b.len() as u64),
            body: self.body.map(|b| b.slice(..b.len().min(body_limit))),
            receipt_id: self.receipt_id,
        }
    }
}
