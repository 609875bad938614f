//! Extra headers an instance's notifications carry
//! (`event.notification.headers`), e.g. a static `Authorization` the
//! receiver expects. Their values are secrets: redacted wherever the
//! configuration is shown, marked sensitive on the request, never logged.

use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::ConfigError;

/// The configuration key.
pub const HEADERS_KEY: &str = "event.notification.headers";

/// Most extra headers one instance may set.
const MAX_HEADERS: usize = 20;
/// Longest value of one extra header, in bytes.
const MAX_VALUE_BYTES: usize = 4096;

/// Headers plugboard sets itself, or that describe the connection or the
/// body: an instance cannot replace them.
const RESERVED: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "user-agent",
];

/// Header-name prefixes of the signature headers (Standard Webhooks and
/// Cloud Elements).
const RESERVED_PREFIXES: &[&str] = &["webhook-", "elements-webhook-"];

/// How a header value is shown instead of itself.
const PLACEHOLDER: &str = "********";

/// The validated extra headers of one instance, in the order given.
pub type DeliveryHeaders = Vec<(HeaderName, HeaderValue)>;

/// The headers object: a JSON object, or that object as a JSON string (as
/// every configuration value may be a string).
fn object(value: &Value) -> Result<Option<Map<String, Value>>, ConfigError> {
    const SHAPE: &str = "expected an object of header names to string values, e.g. \
                         {\"Authorization\": \"Bearer …\"}";
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::Object(o) => Ok(Some(o.clone())),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => Ok(Some(o)),
            _ => Err(ConfigError::new(HEADERS_KEY, SHAPE)),
        },
        _ => Err(ConfigError::new(HEADERS_KEY, SHAPE)),
    }
}

/// Parses and validates `event.notification.headers`; absent or empty is
/// no extra header. Errors name the key and the header at fault, never
/// its value.
pub fn parse(config: &Map<String, Value>) -> Result<DeliveryHeaders, ConfigError> {
    let Some(headers) = config.get(HEADERS_KEY).map(object).transpose()?.flatten() else {
        return Ok(Vec::new());
    };
    if headers.len() > MAX_HEADERS {
        return Err(ConfigError::new(
            HEADERS_KEY,
            format!("at most {MAX_HEADERS} headers, got {}", headers.len()),
        ));
    }
    headers
        .iter()
        .map(|(name, value)| {
            let problem = |message: String| ConfigError::new(HEADERS_KEY, message);
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| problem(format!("{name:?} is not a valid header name")))?;
            let lower = header.as_str();
            if RESERVED.contains(&lower) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
                return Err(problem(format!(
                    "{name} is set by plugboard itself and cannot be replaced"
                )));
            }
            let Value::String(text) = value else {
                return Err(problem(format!("the value of {name} must be a string")));
            };
            if text == PLACEHOLDER {
                return Err(problem(format!(
                    "the value of {name} is {PLACEHOLDER:?}, the placeholder the API shows \
                     instead of stored values: send the real value"
                )));
            }
            if text.len() > MAX_VALUE_BYTES {
                return Err(problem(format!(
                    "the value of {name} is longer than {MAX_VALUE_BYTES} bytes"
                )));
            }
            let mut value = HeaderValue::from_str(text).map_err(|_| {
                problem(format!(
                    "the value of {name} holds a character not allowed in a header \
                     (control characters such as line breaks)"
                ))
            })?;
            value.set_sensitive(true);
            Ok((header, value))
        })
        .collect()
}

/// The headers value with every header value replaced by `"********"`, so
/// the names stay visible; `None` when it is not a headers object (then
/// the whole value is redacted).
pub fn redacted(value: &Value) -> Option<Value> {
    let headers = object(value).ok()??;
    Some(Value::Object(
        headers
            .into_iter()
            .map(|(name, _)| (name, Value::String(PLACEHOLDER.into())))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_value(v: Value) -> Result<DeliveryHeaders, ConfigError> {
        parse(json!({ HEADERS_KEY: v }).as_object().unwrap())
    }

    #[test]
    fn reads_an_object_or_its_json_text() {
        let got = parse_value(json!({"Authorization": "Bearer abc", "X-Tenant": "acme"})).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "authorization");
        assert_eq!(got[0].1, "Bearer abc");
        assert!(got[0].1.is_sensitive());
        let text = parse_value(json!("{\"X-Tenant\": \"acme\"}")).unwrap();
        assert_eq!(text[0].0, "x-tenant");
        assert!(parse_value(json!("")).unwrap().is_empty());
        assert!(parse(&Map::new()).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_would_break_the_request_naming_the_header_not_the_value() {
        for (bad, says) in [
            (json!({"Content-Type": "text/plain"}), "set by plugboard"),
            (json!({"Webhook-Signature": "v1,x"}), "set by plugboard"),
            (json!({"elements-webhook-id": "x"}), "set by plugboard"),
            (json!({"bad name": "x"}), "not a valid header name"),
            (json!({"X-Token": "secret\r\nInjected: 1"}), "not allowed"),
            (json!({"X-Count": 3}), "must be a string"),
            (json!({"Authorization": "********"}), "send the real value"),
            (json!(["Authorization"]), "expected an object"),
            (json!("not json"), "expected an object"),
        ] {
            let err = parse_value(bad.clone()).unwrap_err();
            assert_eq!(err.field, format!("configuration.{HEADERS_KEY}"));
            assert!(err.message.contains(says), "{bad}: {}", err.message);
            assert!(!err.message.contains("secret"), "{}", err.message);
        }
        let many: Map<String, Value> = (0..21).map(|i| (format!("x-h{i}"), json!("v"))).collect();
        assert!(parse_value(Value::Object(many))
            .unwrap_err()
            .message
            .contains("at most 20"));
    }

    #[test]
    fn redaction_keeps_the_names() {
        assert_eq!(
            redacted(&json!({"Authorization": "Bearer abc"})),
            Some(json!({"Authorization": "********"}))
        );
        assert_eq!(
            redacted(&json!("{\"X-Key\": \"k\"}")),
            Some(json!({"X-Key": "********"}))
        );
        assert_eq!(redacted(&json!(42)), None);
    }
}
