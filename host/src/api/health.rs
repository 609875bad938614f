//! The open operational routes: `/healthz` (the process is up), `/readyz`
//! (200 when ready, 503 naming what is not) and `/metrics` (Prometheus).
//!
//! They need no credentials, like the health endpoints of other sidecars:
//! they reveal no secret, only element keys and counts. An operator whose
//! main address is reachable by vendors can move `/metrics` to a separate
//! listener (`metrics_listen`), which then serves these three routes alone.
//! They answer from the first moment the listener is bound, while the rest
//! of the host is still starting: [`front`] serves them and hands every
//! other request to the full set of routes once it is installed.

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceExt as _;

use super::ApiError;
use crate::telemetry::readiness::Readiness;
use crate::telemetry::{metrics, request_id};

/// `/healthz` and `/readyz`, plus `/metrics` when `with_metrics`.
fn routes(readiness: Readiness, with_metrics: bool) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if with_metrics {
        router = router.route("/metrics", get(scrape));
    }
    router
        .method_not_allowed_fallback(super::error::method_not_allowed)
        .with_state(readiness)
}

/// A listener of its own for these routes (`metrics_listen`): any other
/// request is the API's JSON 404.
pub fn router(readiness: Readiness, with_metrics: bool) -> Router {
    routes(readiness, with_metrics).fallback(super::error::no_route)
}

/// The main listener's routes: [`router`]'s, then `app` once it is set (503
/// until then), every request in its own span with a request id.
pub fn front(readiness: Readiness, with_metrics: bool, app: Arc<OnceLock<Router>>) -> Router {
    let router = routes(readiness, with_metrics).fallback(move |request: Request| {
        let app = app.get().cloned();
        async move {
            match app {
                Some(app) => app.oneshot(request).await.into_response(),
                None => ApiError::unavailable("plugboard is starting").into_response(),
            }
        }
    });
    request_id::with_request_ids(router)
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let report = readiness.report().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

async fn scrape(State(readiness): State<Readiness>) -> Response {
    let text = metrics::render(readiness.sample().await);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt as _;

    use super::*;

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let request = http::Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_is_503_naming_the_missing_parts() {
        let readiness = Readiness::new();
        let router = router(readiness.clone(), true);
        assert_eq!(
            get(&router, "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        let (status, body) = get(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let report: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["ready"], false);
        assert_eq!(report["checks"]["store"], "opening the store");
        assert_eq!(report["checks"]["shutdown"], "ok");
        let (status, text) = get(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        // The outbox depth is the store's to report; nothing is opened yet.
        assert!(!text.contains("plugboard_outbox_pending"), "{text}");
        assert!(text.contains("plugboard_plugins_loaded{replica="), "{text}");
    }

    #[tokio::test]
    async fn other_routes_wait_for_the_app() {
        let app = Arc::new(OnceLock::new());
        let front = front(Readiness::new(), true, app.clone());
        assert_eq!(
            get(&front, "/events/x").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let _ = app.set(Router::new().route("/events/x", axum::routing::get(|| async { "app" })));
        assert_eq!(
            get(&front, "/events/x").await,
            (StatusCode::OK, "app".into())
        );
        let request = http::Request::get("/healthz")
            .header("x-request-id", "abc-1")
            .body(Body::empty())
            .unwrap();
        let response = front.clone().oneshot(request).await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "abc-1");
    }

    #[tokio::test]
    async fn metrics_can_be_left_out() {
        let router = router(Readiness::new(), false);
        assert_eq!(get(&router, "/metrics").await.0, StatusCode::NOT_FOUND);
    }
}
