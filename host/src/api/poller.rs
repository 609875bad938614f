//! The poller of one instance: `GET /instances/{id}/poller` shows, per
//! resource, the last and next run, the last error, the checkpoint and the
//! events found; `POST /instances/{id}/poller` polls now and answers with
//! the status afterwards (after any poll of the instance in progress).
//! With several replicas, only the replica holding the instance's partition
//! polls it: the others answer `GET` with 404 naming that, and hand a
//! `POST` to the owner (202 with its id).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::extract::Path;
use super::{ApiError, ApiState};
use crate::cluster::HandedOver;
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

/// `POST /instances/{id}/poller`: 200 with the status after the poll when
/// this replica polls the instance; 202 naming the replica it was handed
/// to when another replica holds the instance's partition (the answer does
/// not wait for that poll: its status is that replica's
/// `GET /instances/{id}/poller`).
pub async fn run_now(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    if let Some(status) = state.poller.run_now(id).await {
        return Ok(Json(status).into_response());
    }
    let exists = state
        .store
        .get_instance(id)
        .await
        .map_err(|e| ApiError::store("reading the instance", &e))?
        .is_some();
    if !exists {
        return Err(not_polled(id));
    }
    let handed = state
        .cluster
        .hand_over_run(id)
        .await
        .map_err(|e| ApiError::store("handing the poll to its replica", &e))?;
    match handed {
        None => Err(not_polled(id)),
        Some(HandedOver {
            replica: None,
            partition,
            ..
        }) => Err(ApiError::unavailable(format!(
            "no replica holds partition {partition} of instance {id} right now; try again in a \
             few seconds"
        ))),
        Some(handed) => Ok((StatusCode::ACCEPTED, Json(handed)).into_response()),
    }
}

fn not_polled(id: i64) -> ApiError {
    ApiError::not_found(format!(
        "instance {id} is not polled here (no such instance, events off, webhooks, no \
         event.poller.configuration, or another replica holds its partition: see GET /replicas)"
    ))
}
