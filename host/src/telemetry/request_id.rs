//! A tracing span per HTTP request, carrying its request id, method and
//! path (never the query, headers or body, which may hold secrets), and the
//! id echoed in the `x-request-id` response header.
//!
//! tower-http does the work: [`SetRequestIdLayer`] gives a request without
//! an id a fresh UUIDv7, [`TraceLayer`] opens the span and logs the outcome
//! at debug, [`PropagateRequestIdLayer`] echoes the id. A caller's own
//! `x-request-id` is kept when it is a short token of letters, digits, `-`,
//! `_` or `.`; any other is dropped first, so it is replaced, never logged.
//! A request whose id plugboard made carries [`AssignedRequestId`], so the
//! ingress can tell the vendor's headers from the one it added.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;

/// The request and response header of the request id.
pub const HEADER: &str = "x-request-id";

/// Longest caller-chosen request id kept.
const MAX_LEN: usize = 64;

/// Whether a caller's request id is safe to keep and log.
fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Marks a request whose `x-request-id` header plugboard made: the caller
/// sent none, or one that was not [`acceptable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssignedRequestId;

/// Drops a caller's request id that is not [`acceptable`], and marks the
/// request [`AssignedRequestId`] when it is left without one.
fn drop_unacceptable(mut request: Request) -> Request {
    let kept = request
        .headers()
        .get(HEADER)
        .is_some_and(|id| acceptable(id.as_bytes()));
    if !kept {
        request.headers_mut().remove(HEADER);
        request.extensions_mut().insert(AssignedRequestId);
    }
    request
}

/// Fresh request ids: UUIDv7, so they sort by time in logs.
#[derive(Clone, Copy, Debug, Default)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// The span of one request, named by its (already set) request id.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// `router` with every request in its own span carrying a request id, and
/// the id echoed in the response.
pub fn with_request_ids<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span)
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(tracing::Level::DEBUG)
                .latency_unit(LatencyUnit::Micros),
        )
        .on_failure(());
    // Layers added later run first: drop a bad id, set one, echo it, trace.
    router
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuidV7))
        .layer(axum::middleware::map_request(|r: Request| async move {
            drop_unacceptable(r)
        }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    #[test]
    fn keeps_only_short_plain_ids() {
        assert!(acceptable(b"req-1.2_3"));
        assert!(acceptable("a".repeat(64).as_bytes()));
        assert!(!acceptable("a".repeat(65).as_bytes()));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"a b"));
        assert!(!acceptable(b"a\nb"));
    }

    /// Sends a request with the caller's id `given`: the id echoed in the
    /// response, and whether the handler saw the request marked
    /// [`AssignedRequestId`].
    async fn send(given: Option<&str>) -> (String, bool) {
        let router = with_request_ids(Router::new().route(
            "/",
            get(|request: Request| async move {
                let marked = request.extensions().get::<AssignedRequestId>();
                marked.is_some().to_string()
            }),
        ));
        let mut request = http::Request::get("/");
        if let Some(id) = given {
            request = request.header(HEADER, id);
        }
        let response = router
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let echoed = response.headers()[HEADER].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        (echoed, body == "true")
    }

    #[tokio::test]
    async fn only_an_id_plugboard_made_is_marked_assigned() {
        assert!(!send(Some("abc-1")).await.1);
        for given in [None, Some("a b"), Some(&*"x".repeat(65))] {
            assert!(send(given).await.1, "{given:?}");
        }
    }

    #[tokio::test]
    async fn a_plain_caller_id_is_echoed_and_others_replaced() {
        assert_eq!(send(Some("abc-1")).await.0, "abc-1");
        for given in [None, Some("a b"), Some(&*"x".repeat(65))] {
            let fresh = send(given).await.0;
            let uuid = uuid::Uuid::parse_str(&fresh).unwrap();
            assert_eq!(uuid.get_version_num(), 7, "{given:?} -> {fresh}");
        }
    }
}
