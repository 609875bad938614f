//! The request extractors of the HTTP surface: query string, path and JSON
//! body, each refusing bad input with the API's JSON error
//! ([`ApiError`]) instead of the framework's plain-text rejections.
//!
//! - [`Query`] refuses unknown parameters (the target type denies unknown
//!   fields) and names every one of them, then names the parameter whose
//!   value does not parse.
//! - [`Path`] names the path parameter that does not parse.
//! - [`JsonBody`] reads the body within the management body limit (413
//!   beyond it) and names the field of the first value that does not fit,
//!   whatever the `content-type`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Query parameters deserialized into `T`; use `T` with
/// `#[serde(deny_unknown_fields)]` so unknown parameters are refused.
pub struct Query<T>(pub T);

/// No query parameters at all: for routes that take none.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Path parameters deserialized into `T`.
pub struct Path<T>(pub T);

/// The JSON request body deserialized into `T`.
pub struct JsonBody<T>(pub T);

/// Where a query or body deserialization failed: the field, if serde could
/// tell, and what went wrong.
fn located<E: std::fmt::Display>(
    error: &serde_path_to_error::Error<E>,
) -> (Option<String>, String) {
    let path = error.path().to_string();
    let field = (path != "." && path != "?").then_some(path);
    (field, error.inner().to_string())
}

/// `unknown field `x`, expected one of ...` is how serde reports a field a
/// struct with `deny_unknown_fields` does not have; the part after the name
/// says what is expected.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once("`, "))
        .map(|(_, expected)| expected)
}

fn deserialize_query<T: DeserializeOwned>(
    pairs: &[(String, String)],
) -> Result<T, serde_path_to_error::Error<serde_urlencoded::de::Error>> {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let deserializer =
        serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(encoded.as_bytes()));
    serde_path_to_error::deserialize(deserializer)
}

/// Parses a query string into `T`, naming every unknown parameter at once
/// (each is taken out and the rest tried again), else the first bad value.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut unknown: Vec<String> = Vec::new();
    let mut expected = String::new();
    loop {
        let error = match deserialize_query::<T>(&pairs) {
            Ok(value) if unknown.is_empty() => return Ok(value),
            Ok(_) => break,
            Err(error) => error,
        };
        let (field, message) = located(&error);
        match (field, unknown_field(&message)) {
            (Some(name), Some(what)) if !unknown.contains(&name) => {
                expected = what.replace("there are no fields", "this route takes none");
                pairs.retain(|(key, _)| *key != name);
                unknown.push(name);
            }
            _ if !unknown.is_empty() => break,
            (Some(name), _) => {
                return Err(ApiError::invalid_field(
                    name,
                    format!("query parameter is not valid: {message}"),
                ))
            }
            (None, _) => {
                return Err(ApiError::bad_request(format!(
                    "query string is not valid: {message}"
                )))
            }
        }
    }
    let names = unknown
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let noun = if unknown.len() == 1 {
        "unknown query parameter"
    } else {
        "unknown query parameters"
    };
    let mut error = ApiError::bad_request(format!("{noun} {names} ({expected})"));
    error.field = unknown.into_iter().next();
    Err(error)
}

/// Parses a JSON body into `T`, naming the field of the first value that
/// does not fit.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            match located(&error) {
                (Some(field), message) => {
                    ApiError::invalid_field(field, format!("request body is not valid: {message}"))
                }
                (None, message) => {
                    ApiError::bad_request(format!("request body is not valid JSON: {message}"))
                }
            }
        })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    Ok(value)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                let names: Vec<String> = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|raw| raw.iter().map(|(name, _)| name.to_string()).collect())
                    .unwrap_or_default();
                Err(ApiError::from_path_rejection(rejection, &names))
            }
        }
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(ApiError::from)?;
        parse_json(&body).map(JsonBody)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Params {
        page_size: Option<u32>,
        status: Option<String>,
    }

    #[test]
    fn unknown_parameters_are_all_named() {
        let error = parse_query::<Params>("objectId=9001&status=FAILED&foo=1").unwrap_err();
        assert_eq!(error.status, 400);
        assert_eq!(error.field.as_deref(), Some("objectId"));
        assert_eq!(
            error.message,
            "unknown query parameters `objectId`, `foo` (expected `pageSize` or `status`)"
        );
        let error = parse_query::<NoParams>("foo=1").unwrap_err();
        assert_eq!(
            error.message,
            "unknown query parameter `foo` (this route takes none)"
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let error = parse_query::<Params>("pageSize=-1").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("pageSize"));
        assert!(error
            .message
            .starts_with("pageSize: query parameter is not valid"));
        assert_eq!(
            parse_query::<Params>("pageSize=5&status=FAILED").unwrap(),
            Params {
                page_size: Some(5),
                status: Some("FAILED".into())
            }
        );
        assert!(parse_query::<NoParams>("").is_ok());
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            tags: Option<Vec<String>>,
        }
        let error = parse_json::<Body>(br#"{"tags": [1]}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("tags[0]"));
        let error = parse_json::<Body>(b"{").unwrap_err();
        assert_eq!(error.field, None);
        assert!(error.message.starts_with("request body is not valid JSON"));
        let error = parse_json::<Body>(b"{} x").unwrap_err();
        assert!(
            error.message.contains("trailing characters"),
            "{}",
            error.message
        );
    }
}
