//! `GET /plugins`: what the plugin folder holds and what each file serves.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::extract::{NoParams, Query};
use crate::registry::{PluginStatus, Registry};
use crate::runtime::ElementDescription;

/// One file of the plugin folder, with the element it serves.
#[derive(Serialize)]
pub struct PluginView {
    /// File status (key, version, hash, load time, last error).
    #[serde(flatten)]
    pub status: PluginStatus,
    /// What the serving version describes, if one serves.
    pub element: Option<ElementDescription>,
}

/// Lists every plugin file and its status.
pub async fn list(
    State(registry): State<Arc<Registry>>,
    Query(NoParams {}): Query<NoParams>,
) -> Json<Vec<PluginView>> {
    let snapshot = registry.snapshot();
    let views = snapshot
        .files()
        .iter()
        .map(|status| PluginView {
            element: status
                .key
                .as_deref()
                .and_then(|k| snapshot.get(k))
                .map(|p| p.plugin.description().clone()),
            status: status.clone(),
        })
        .collect();
    Json(views)
}
