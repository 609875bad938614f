//! Converting between HTTP and the plugin's request/response records, and
//! reading the body under the size limit.

use axum::body::Body;
use axum::http::{request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::api::ApiError;
use crate::runtime::{Header, HttpRequest, HttpResponse};
use crate::telemetry::request_id::{self, AssignedRequestId};

/// The most bytes of a too-large body read and thrown away before the 413
/// is sent: a vendor still sending would otherwise see its connection reset
/// instead of the answer, and retry the same payload. Past this the
/// connection is closed.
const DISCARD_BYTES: usize = 16 << 20;

/// Reads the whole body within `timeout`, refusing (413) a declared or
/// actual length over `limit` — after reading and discarding the rest (up
/// to [`DISCARD_BYTES`], still within `timeout`) so the vendor receives the
/// answer. A body that does not arrive in time is a 408.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        discard(&mut body, deadline).await;
        return Err(ApiError::too_large(limit));
    }
    let mut bytes = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(ApiError::body_timeout(timeout.as_secs())),
            Ok(None) => return Ok(bytes.freeze()),
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request(format!(
                    "could not read the request body: {e}"
                )))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if bytes.len() + data.len() > limit {
            discard(&mut body, deadline).await;
            return Err(ApiError::too_large(limit));
        }
        bytes.extend_from_slice(&data);
    }
}

/// Reads and drops what is left of `body`, up to [`DISCARD_BYTES`] and until
/// `deadline`.
async fn discard(body: &mut Body, deadline: tokio::time::Instant) {
    let mut dropped = 0usize;
    while dropped < DISCARD_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                dropped += frame.data_ref().map_or(0, |d| d.len());
            }
            _ => return,
        }
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

/// The headers the caller sent, as [`header_pairs`]: without the
/// `x-request-id` plugboard added when the caller sent none (which it
/// marks [`AssignedRequestId`]). The element sees, and the receipt keeps,
/// only what the vendor sent.
pub(super) fn vendor_header_pairs(parts: &Parts) -> Vec<(String, String)> {
    let mut pairs = header_pairs(&parts.headers);
    if parts.extensions.get::<AssignedRequestId>().is_some() {
        pairs.retain(|(name, _)| name != request_id::HEADER);
    }
    pairs
}

/// The plugin's view of an inbound request, with `headers` from
/// [`vendor_header_pairs`].
pub(super) fn to_plugin(parts: &Parts, headers: &[(String, String)], body: &Bytes) -> HttpRequest {
    HttpRequest {
        method: parts.method.to_string(),
        url: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
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
