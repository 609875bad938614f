//! The one error type of the HTTP API and the one place that chooses an
//! HTTP status for every failure, including plugin errors, the framework's
//! own rejections (path parameters, request bodies) and requests no route
//! serves: every error answer is the JSON `{"code","message","field"?}`.

use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::runtime::{CallError, ElementError};
use crate::store::{ErrorKind, StoreError};

/// An API failure: a status and a message that names what is wrong.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `bad_request`.
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// Seconds after which the client may retry, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 naming the field at fault.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let mut e = Self::bad_request(format!("{field}: {}", message.into()));
        e.field = Some(field);
        e
    }

    /// 412: the resource is not at the version the request named (`If-Match`).
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            message,
        )
    }

    /// 401: missing or wrong credentials or signature.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the request conflicts with the current state (e.g. events disabled).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the body is larger than allowed.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body is larger than {limit} bytes"),
        )
    }

    /// 408: the request body did not arrive in time.
    pub fn body_timeout(seconds: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within {seconds} s"),
        )
    }

    /// 503: the host cannot serve this yet (or any more).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 502: the vendor refused to register an instance's webhook URL (the
    /// message names the vendor's status and message).
    pub fn vendor_subscription_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "vendor_subscription_failed",
            message,
        )
    }

    /// 500: the plugin answered with output the host cannot use.
    pub fn plugin_output(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_failed",
            format!("plugin returned unusable events: {}", message.into()),
        )
    }

    /// 500: the host failed; details go to the log, not the client.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %format!("{error:#}"), "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            context.to_string(),
        )
    }
}

impl ApiError {
    /// A store failure while `context`: a missing instance is 404, a
    /// conflicting change 409, a database that cannot be reached right now
    /// 503 (the client may retry); anything else is the host's fault (500,
    /// details in the log only).
    pub fn store(context: &str, error: &StoreError) -> Self {
        match error.kind() {
            ErrorKind::NotFound => Self::not_found(error.to_string()),
            ErrorKind::Conflict => Self::conflict("conflict", error.to_string()),
            ErrorKind::Unavailable => {
                tracing::warn!(error = %error, cause = ?std::error::Error::source(error).map(ToString::to_string), "{context}");
                Self::unavailable(format!("{context}: the store is unavailable"))
            }
            ErrorKind::InvalidValue | ErrorKind::Corrupt | ErrorKind::Internal => {
                Self::internal(context, error)
            }
        }
    }

    /// A path parameter that does not parse, naming it (`names` are the
    /// route's parameter names in order, for rejections that only know the
    /// position).
    pub fn from_path_rejection(rejection: PathRejection, names: &[String]) -> Self {
        let PathRejection::FailedToDeserializePathParams(failed) = rejection else {
            return Self::internal("reading the path parameters failed", &rejection.body_text());
        };
        let expected = |ty: &str| match ty {
            "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => "an integer".into(),
            other => format!("a value of type {other}"),
        };
        let (key, message) = match failed.kind() {
            PathErrorKind::ParseErrorAtKey {
                key,
                value,
                expected_type,
            } => (
                Some(key.clone()),
                format!("expected {}, got {value:?}", expected(expected_type)),
            ),
            PathErrorKind::ParseErrorAtIndex {
                index,
                value,
                expected_type,
            } => (
                names.get(*index).cloned(),
                format!("expected {}, got {value:?}", expected(expected_type)),
            ),
            PathErrorKind::ParseError {
                value,
                expected_type,
            } => (
                names.first().cloned(),
                format!("expected {}, got {value:?}", expected(expected_type)),
            ),
            PathErrorKind::InvalidUtf8InPathParam { key } => {
                (Some(key.clone()), "is not valid UTF-8".into())
            }
            PathErrorKind::DeserializeError { key, message, .. } => {
                (Some(key.clone()), message.clone())
            }
            other => (None, other.to_string()),
        };
        match key {
            Some(key) => Self::invalid_field(key, format!("path parameter: {message}")),
            None if failed.status().is_client_error() => {
                Self::bad_request(format!("path is not valid: {message}"))
            }
            None => Self::internal("reading the path parameters failed", &message),
        }
    }
}

impl From<BytesRejection> for ApiError {
    /// A body that could not be read: over the body limit (413) or broken off.
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::too_large(super::MAX_MANAGEMENT_BODY_BYTES)
        } else {
            Self::bad_request(format!(
                "the request body could not be read: {}",
                rejection.body_text()
            ))
        }
    }
}

/// The answer to a request no route serves: 404 naming the path.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// The answer to a method a route does not serve: 405 naming both (the
/// router adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not serve {method}", uri.path()),
    )
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        let message = e.to_string();
        match e {
            CallError::Element(ElementError::BadRequest(_)) => Self::bad_request(message),
            CallError::Element(ElementError::Unauthorized(_)) => Self::unauthorized(message),
            CallError::Element(ElementError::Unsupported(_)) => {
                Self::new(StatusCode::NOT_IMPLEMENTED, "unsupported", message)
            }
            CallError::Element(ElementError::Internal(_)) | CallError::Trap(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "plugin_failed", message)
            }
            CallError::Memory(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "plugin_memory", message)
            }
            CallError::Timeout(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "plugin_timeout", message)
            }
            CallError::CircuitOpen { retry_after, .. } => {
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "plugin_circuit_open",
                    message,
                );
                e.retry_after = Some(retry_after.as_secs().max(1));
                e
            }
            CallError::Unavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

/// Seconds a client is asked to wait before trying a 503 again.
pub const RETRY_AFTER_SECS: u64 = 30;

impl IntoResponse for ApiError {
    /// The JSON body; a 503 (the host cannot serve this now: starting, a
    /// plugin out of time, a store that cannot write) also carries
    /// `Retry-After`, so vendors and clients know to try again.
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let retry_after = self
            .retry_after
            .or((self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(RETRY_AFTER_SECS));
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_get_the_status_of_their_kind() {
        let status = |e: StoreError| ApiError::store("doing it failed", &e).status;
        assert_eq!(
            status(StoreError::no_such_instance(3)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(StoreError::version_conflict(3, 1, 2)),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(StoreError::closed()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(StoreError::corrupt("bad row")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let e = ApiError::store("doing it failed", &StoreError::corrupt("secret detail"));
        assert_eq!(e.message, "doing it failed", "details stay in the log");
    }

    #[test]
    fn only_503_says_when_to_retry() {
        let full = StoreError::new(ErrorKind::Unavailable, "SQLite: database or disk is full");
        let response = ApiError::store("storing the receipt failed", &full).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        let response = ApiError::not_found("no such instance").into_response();
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
