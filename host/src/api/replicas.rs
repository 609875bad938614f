//! `GET /replicas`: the replicas sharing this store that are alive (a
//! heartbeat within the lease length), with the poll partitions and
//! singleton jobs each holds. On SQLite: this process alone, holding all
//! 256 partitions and every singleton.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::extract::{NoParams, Query};
use super::{ApiError, ApiState};
use crate::store::{ReplicaRecord, PARTITIONS};

/// The answer of `GET /replicas`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicasView {
    /// How many partitions the instances are spread over (256).
    pub partition_count: u16,
    /// The replicas alive, by id.
    pub replicas: Vec<ReplicaView>,
}

/// One live replica.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaView {
    /// Its id.
    pub id: String,
    /// True for the replica answering this request.
    #[serde(rename = "self")]
    pub is_self: bool,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339, the database's clock).
    pub last_seen: String,
    /// The partitions it holds, ascending.
    pub partitions: Vec<u16>,
    /// The singleton jobs it runs, e.g. `maintenance`.
    pub singletons: Vec<String>,
}

/// Lists the live replicas.
pub async fn list(
    State(state): State<ApiState>,
    Query(NoParams {}): Query<NoParams>,
) -> Result<Json<ReplicasView>, ApiError> {
    let records = state
        .cluster
        .replicas()
        .await
        .map_err(|e| ApiError::internal("reading the replicas", &e))?;
    let me = state.cluster.replica_id();
    let replicas = records.into_iter().map(|r| view(r, me)).collect();
    Ok(Json(ReplicasView {
        partition_count: PARTITIONS,
        replicas,
    }))
}

fn view(r: ReplicaRecord, me: &str) -> ReplicaView {
    let stamp = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    ReplicaView {
        is_self: r.id == me,
        started_at: stamp(r.started_at),
        last_seen: stamp(r.last_seen),
        id: r.id,
        partitions: r.partitions,
        singletons: r.singletons,
    }
}
