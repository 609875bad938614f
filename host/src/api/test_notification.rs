//! `POST /instances/{id}/test-notification`: sends a test notification to
//! the instance's callback URL now (signed, with its extra headers, marked
//! `"test": true` in its body; not stored, not retried) and answers what
//! the receiver said, so a receiver's setup and signature verification can
//! be checked before real events flow.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::events::AnswerBody;
use super::extract::Path;
use super::{ApiError, ApiState};
use crate::delivery::{TestError, TestOutcome};

/// The answer: where it went and what the receiver said. The receiver's
/// answer (its first bytes) is `responseBody` when it is UTF-8 text, else
/// `responseBodyBase64`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestView<'a> {
    event_id: &'a str,
    url: &'a str,
    delivered: bool,
    status_code: Option<u16>,
    latency_ms: u64,
    error: Option<&'a str>,
    #[serde(flatten)]
    answer: AnswerBody<'a>,
}

impl<'a> TestView<'a> {
    fn of(o: &'a TestOutcome) -> Self {
        Self {
            event_id: &o.event_id,
            url: &o.url,
            delivered: o.delivered,
            status_code: o.status_code,
            latency_ms: o.latency_ms,
            error: o.error.as_deref(),
            answer: AnswerBody::of(&o.response_body),
        }
    }
}

/// Sends the test notification. 200 with the outcome whether or not the
/// receiver accepted it (`delivered` says which); 404 for an unknown
/// instance; 409 `no_callback_url` when there is nowhere to send it.
pub async fn send(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let outcome = state.delivery.send_test(id).await.map_err(|e| match e {
        TestError::NotFound(_) => ApiError::not_found(e.to_string()),
        TestError::NoCallbackUrl(_) => ApiError::conflict("no_callback_url", e.to_string()),
        TestError::Store(_) => ApiError::internal("sending a test notification", &e),
    })?;
    Ok(Json(
        serde_json::to_value(TestView::of(&outcome)).expect("the view serializes"),
    ))
}
