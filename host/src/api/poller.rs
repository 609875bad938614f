//! The poller of one instance: `GET /instances/{id}/poller` shows, per
//! resource, the last and next run, the last error, the checkpoint and the
//! events found; `POST /instances/{id}/poller` polls now and answers with
//! the status afterwards (after any poll of the instance in progress).

use axum::extract::State;
use axum::Json;

use super::extract::Path;
use super::{ApiError, ApiState};
use crate::poller::InstanceStatus;

/// `GET /instances/{id}/poller`.
pub async fn status(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<InstanceStatus>, ApiError> {
    state
        .poller
        .status(id)
        .map(Json)
        .ok_or_else(|| not_polled(id))
}

/// `POST /instances/{id}/poller`.
pub async fn run_now(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<InstanceStatus>, ApiError> {
    state
        .poller
        .run_now(id)
        .await
        .map(Json)
        .ok_or_else(|| not_polled(id))
}

fn not_polled(id: i64) -> ApiError {
    ApiError::not_found(format!(
        "instance {id} is not polled (no such instance, events off, webhooks, or no \
         event.poller.configuration)"
    ))
}
