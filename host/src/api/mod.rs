//! The HTTP surface of the host: the open operational routes ([`health`]:
//! health, readiness, metrics), the authenticated management API (plugins,
//! instances, event log), and the vendor-facing webhook endpoints of
//! [`crate::ingress`].
//!
//! Every error answer of the HTTP surface is the JSON of [`ApiError`]: the
//! handlers read their input through [`extract`], whose rejections are API
//! errors, and [`with_fallbacks`] answers unknown routes and methods the
//! same way.

pub mod auth;
pub mod error;
pub mod event_search;
pub mod events;
pub mod extract;
pub mod health;
pub mod instances;
pub mod plugins;
pub mod poller;
pub mod replicas;
pub mod test_notification;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

use crate::delivery::Delivery;
use crate::instance::InstanceService;
use crate::registry::Registry;
use crate::store::Store;

pub use error::ApiError;

/// Largest body a management request may carry (webhooks have their own
/// limit, `max_body_bytes`).
pub const MAX_MANAGEMENT_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Loaded plugins.
    pub registry: Arc<Registry>,
    /// Management credentials.
    pub credentials: Arc<auth::Credentials>,
    /// Durable store.
    pub store: Store,
    /// The instance service: every instance write goes through it.
    pub instances: InstanceService,
    /// The delivery worker, woken after a redelivery is scheduled.
    pub delivery: Delivery,
    /// The poller, for its status and manual runs.
    pub poller: crate::poller::Poller,
    /// This replica's leases, for `GET /replicas`.
    pub cluster: crate::cluster::Cluster,
}

impl axum::extract::FromRef<ApiState> for Arc<Registry> {
    fn from_ref(s: &ApiState) -> Self {
        s.registry.clone()
    }
}

/// The management routes (authenticated).
pub fn router(state: ApiState) -> Router {
    let management = Router::new()
        .route("/plugins", get(plugins::list))
        .route("/replicas", get(replicas::list))
        .route("/instances", get(instances::list).post(instances::create))
        .route("/instances/events", get(events::list_all))
        .route(
            "/instances/events/redeliver",
            post(events::redeliver_matching),
        )
        .route("/instances/events/{event_id}", get(events::get_any))
        .route(
            "/instances/events/{event_id}/redeliver",
            post(events::redeliver_one),
        )
        .route(
            "/instances/{id}",
            get(instances::get)
                .patch(instances::patch)
                .delete(instances::delete),
        )
        .route(
            "/instances/{id}/events/enabled",
            put(instances::switch_events),
        )
        .route("/instances/{id}/events", get(events::list_instance))
        .route("/instances/{id}/subscription", post(instances::resubscribe))
        .route(
            "/instances/{id}/test-notification",
            post(test_notification::send),
        )
        .route(
            "/instances/{id}/poller",
            get(poller::status).post(poller::run_now),
        )
        .route(
            "/instances/{id}/events/redeliver",
            post(events::redeliver_dead),
        )
        .route(
            "/instances/{id}/events/{event_id}",
            get(events::get_for_instance),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.credentials.clone(),
            auth::require,
        ))
        .layer(DefaultBodyLimit::max(MAX_MANAGEMENT_BODY_BYTES));
    management.with_state(state)
}

/// `app` answering requests no route serves with the JSON 404, and methods
/// a route does not serve with the JSON 405. Call it last, once every
/// route is in `app`.
pub fn with_fallbacks(app: Router) -> Router {
    app.fallback(error::no_route)
        .method_not_allowed_fallback(error::method_not_allowed)
}
