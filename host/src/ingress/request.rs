//! Converting between HTTP and the plugin's request/response records, and
//! reading the body under the size limit.

use axum::body::Body;
use axum::http::{request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::api::ApiError;
use crate::runtime::{Header, HttpRequest, HttpResponse};

/// Reads the whole body, refusing (413) a declared or actual length over
/// `limit` without reading past it.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Header pairs with lower-case names (values lossily decoded).
pub(super) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The plugin's view of an inbound request.
pub(super) fn to_plugin(parts: &Parts, body: &Bytes) -> HttpRequest {
    HttpRequest {
        method: parts.method.to_string(),
        url: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: header_pairs(&parts.headers)
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body: body.to_vec(),
    }
}

/// The HTTP response a plugin asked to send (handshakes, challenges).
pub(super) fn from_plugin(r: HttpResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut response = (status, r.body).into_response();
    let headers = response.headers_mut();
    for h in r.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(h.name.as_bytes()),
            http::HeaderValue::from_str(&h.value),
        ) {
            headers.append(name, value);
        }
    }
    response
}
