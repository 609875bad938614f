//! The response of an outbound request, read whole under a size cap.

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::error::FetchError;

/// A complete response: status, headers and the whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundResponse {
    /// HTTP status code. Redirects are returned as they are, never followed.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, no larger than the cap the request was made with.
    pub body: Bytes,
}

impl OutboundResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Retry-After` in seconds from now, given as a number of seconds or
    /// as an HTTP date (RFC 9110 §10.2.3; a date already past is 0).
    /// Anything else is treated as absent.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs_at(std::time::SystemTime::now())
    }

    /// [`Self::retry_after_secs`] as seen at `now`.
    fn retry_after_secs_at(&self, now: std::time::SystemTime) -> Option<u64> {
        let value = self.header("retry-after")?.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(secs);
        }
        let at = httpdate::parse_http_date(value).ok()?;
        Some(at.duration_since(now).map_or(0, |wait| wait.as_secs()))
    }

    /// The value of header `name`, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Reads `response` whole. A declared length over `max_body` fails at once; otherwise
    /// the body is read only until it passes the cap, so no more than `max_body` bytes are
    /// ever buffered.
    pub(super) async fn read(
        response: http::Response<Incoming>,
        max_body: usize,
    ) -> Result<Self, FetchError> {
        let too_large = FetchError::TooLarge { limit: max_body };
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_body as u64) {
            return Err(too_large);
        }
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|err| {
                if err.is::<LengthLimitError>() {
                    too_large
                } else {
                    FetchError::from_transport(err.as_ref())
                }
            })?
            .to_bytes();
        Ok(Self {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)]) -> OutboundResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        OutboundResponse {
            status,
            headers: map,
            body: Bytes::new(),
        }
    }

    #[test]
    fn success_is_2xx_only() {
        assert!(response(200, &[]).is_success());
        assert!(response(204, &[]).is_success());
        assert!(!response(302, &[]).is_success());
        assert!(!response(199, &[]).is_success());
        assert!(!response(500, &[]).is_success());
    }

    #[test]
    fn header_lookup_ignores_case() {
        let r = response(200, &[("retry-after", "120")]);
        assert_eq!(r.header("Retry-After"), Some("120"));
        assert_eq!(r.header("link"), None);
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(
            response(429, &[("retry-after", " 30 ")]).retry_after_secs(),
            Some(30)
        );
        assert_eq!(response(503, &[]).retry_after_secs(), None);
        assert_eq!(
            response(503, &[("retry-after", "soon")]).retry_after_secs(),
            None
        );
        assert_eq!(
            response(503, &[("retry-after", "-5")]).retry_after_secs(),
            None
        );
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let at = |value: &str| response(503, &[("retry-after", value)]).retry_after_secs_at(now);
        assert_eq!(at("Wed, 21 Oct 2015 07:30:00 GMT"), Some(120));
        // The obsolete forms RFC 9110 requires recipients to accept.
        assert_eq!(at("Wednesday, 21-Oct-15 07:29:00 GMT"), Some(60));
        assert_eq!(at("Wed Oct 21 07:28:30 2015"), Some(30));
        assert_eq!(at("Wed, 21 Oct 2015 07:00:00 GMT"), Some(0), "a past date");
        assert_eq!(at("Wed, 21 Oct 2015 25:00:00 GMT"), None, "not a date");
    }
}
