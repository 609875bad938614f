//! Polling the ConnectWise Manage REST API.
//!
//! `prepare` builds the request for one page, replacing the host's generic
//! draft: `GET {base}{path}?conditions=lastUpdated>[{since}]&page=…&pageSize=…
//! &orderBy=_info/lastUpdated asc` with Basic authentication and the
//! `clientId` header. `map` turns the JSON array of records into events and,
//! when the page was full, builds the request for the next page the same way.
//!
//! Poll configuration of a resource (all optional): `url` (a path below the
//! API base, or an absolute URL: the element adds paging, and the date
//! condition unless the URL has a `conditions` parameter of its own),
//! `pageSize` (default 100, at most 1000), and `createdCheckTolerance`
//! (seconds within which `dateEntered` and `lastUpdated` still count as the
//! same instant, default 0). A `url` with template variables (`${…}`) is
//! taken from the host's draft, where they are filled in.
//!
//! A resource configured the Cloud Elements way — with `datesConfiguration`,
//! or a templated `url` — is mapped by the host's generic mapping: `map`
//! answers `unsupported`, and the host pages by the `Link` header, asking
//! `prepare` for each page.

use serde_json::Value;

use crate::bindings::plugboard::element::types::{
    ElementError, EventType, HttpRequest, HttpResponse, NormalizedEvent, PollContext, PollPage,
};
use crate::config::{Settings, SERVER_URL};
use crate::host::Host;
use crate::json::{id_text, lookup, lookup_str, number};
use crate::rest;
use crate::timestamp::Timestamp;

/// Records per page when the resource configuration sets none.
const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page ConnectWise serves.
const MAX_PAGE_SIZE: u32 = 1000;

/// The poll configuration of one resource, as far as this element uses it.
#[derive(Debug, Clone, PartialEq)]
struct ResourceConfig {
    /// `url`: a path below the API base or an absolute URL.
    url: Option<String>,
    /// `pageSize`, clamped to [`MAX_PAGE_SIZE`].
    page_size: u32,
    /// `createdCheckTolerance`, in nanoseconds.
    created_tolerance_nanos: u128,
    /// Whether the host maps this resource (`datesConfiguration` or a
    /// templated `url`).
    declarative: bool,
}

impl ResourceConfig {
    /// Parses the resource's poll configuration (JSON text; empty means `{}`).
    fn parse(text: &str) -> Result<Self, ElementError> {
        let bad = |message: String| ElementError::BadRequest(message);
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(text)
                .map_err(|error| bad(format!("resource configuration is not JSON: {error}")))?
        };
        if !(value.is_object() || value.is_null()) {
            return Err(bad(
                "resource configuration must be a JSON object".to_owned()
            ));
        }
        let url = lookup_str(&value, "url")
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned);
        let page_size = match lookup(&value, "pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match number(raw) {
                Some(size) if size >= 1.0 => size.min(f64::from(MAX_PAGE_SIZE)) as u32,
                _ => {
                    return Err(bad(format!(
                        "pageSize must be between 1 and {MAX_PAGE_SIZE}"
                    )))
                }
            },
        };
        let created_tolerance_nanos = match lookup(&value, "createdCheckTolerance") {
            None => 0,
            Some(raw) => match number(raw) {
                Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                    (seconds * 1e9).round() as u128
                }
                _ => {
                    return Err(bad(
                        "createdCheckTolerance must be a non-negative number of seconds".to_owned(),
                    ))
                }
            },
        };
        let declarative = lookup(&value, "datesConfiguration").is_some()
            || url.as_deref().is_some_and(|u| u.contains("${"));
        Ok(Self {
            url,
            page_size,
            created_tolerance_nanos,
            declarative,
        })
    }
}

/// Builds the request for the poll's current page; `draft` is the host's
/// request with the URL template filled.
pub fn prepare(
    host: &impl Host,
    settings: Settings<'_>,
    poll: &PollContext,
    draft: &HttpRequest,
) -> Result<HttpRequest, ElementError> {
    let mut resource = ResourceConfig::parse(&poll.resource_config)?;
    if resource.url.as_deref().is_some_and(|u| u.contains("${")) && !draft.url.is_empty() {
        resource.url = Some(draft.url.clone());
    }
    page_request(host, settings, poll, &resource, poll.page.max(1))
}

/// Maps one page of records into events and builds the next page's request
/// when this page was full.
pub fn map(
    host: &impl Host,
    settings: Settings<'_>,
    poll: &PollContext,
    response: &HttpResponse,
) -> Result<PollPage, ElementError> {
    if !(200..300).contains(&response.status) {
        return Err(ElementError::Internal(format!(
            "vendor answered {}",
            response.status
        )));
    }
    let resource = ResourceConfig::parse(&poll.resource_config)?;
    if resource.declarative {
        return Err(ElementError::Unsupported(
            "this resource is configured for the host's declarative mapping".to_owned(),
        ));
    }
    let records = match serde_json::from_slice(&response.body) {
        Ok(Value::Array(records)) => records,
        Ok(_) => return Err(ElementError::BadRequest("expected a JSON array".to_owned())),
        Err(error) => {
            return Err(ElementError::BadRequest(format!(
                "expected a JSON array: {error}"
            )))
        }
    };
    let object_type = rest::object_type(&poll.resource_name);
    let events = records
        .iter()
        .enumerate()
        .map(|(index, record)| map_record(record, index, object_type, &resource))
        .collect::<Result<Vec<_>, _>>()?;
    let full = u32::try_from(records.len()).is_ok_and(|len| len == resource.page_size);
    let next = match poll.page.max(1).checked_add(1) {
        Some(page) if full => Some(page_request(host, settings, poll, &resource, page)?),
        _ => None,
    };
    Ok(PollPage { events, next })
}

/// Builds the GET for one page of the poll window.
fn page_request(
    host: &impl Host,
    settings: Settings<'_>,
    poll: &PollContext,
    resource: &ResourceConfig,
    page: u32,
) -> Result<HttpRequest, ElementError> {
    let server_url = settings.require_any(&[SERVER_URL])?;
    let headers = rest::auth_headers(host, settings)?;
    let since = Timestamp::parse(&poll.since).ok_or_else(|| {
        ElementError::BadRequest(format!(
            "poll window start `{}` is not an RFC 3339 timestamp",
            poll.since
        ))
    })?;

    let url = rest::resource_url(
        &rest::api_base(server_url),
        &poll.resource_name,
        resource.url.as_deref(),
    )?;
    let mut url = url;
    let mut separator = if url.contains('?') { '&' } else { '?' };
    if !url.contains("conditions=") {
        let conditions = format!("lastUpdated>[{}]", since.to_utc_seconds());
        url = format!(
            "{url}{separator}conditions={}",
            rest::percent_encode(&conditions)
        );
        separator = '&';
    }
    let url = format!(
        "{url}{separator}page={page}&pageSize={}&orderBy={}",
        resource.page_size,
        rest::percent_encode("_info/lastUpdated asc"),
    );

    Ok(HttpRequest {
        method: "GET".to_owned(),
        url,
        query: String::new(),
        headers,
        body: Vec::new(),
    })
}

/// Maps one REST record into an event.
fn map_record(
    record: &Value,
    index: usize,
    object_type: &str,
    resource: &ResourceConfig,
) -> Result<NormalizedEvent, ElementError> {
    let object_id = record
        .get("id")
        .and_then(id_text)
        .ok_or_else(|| ElementError::BadRequest(format!("record {index} has no `id`")))?;
    let last_updated = lookup_str(record, "_info.lastUpdated");
    let date_entered =
        lookup_str(record, "_info.dateEntered").or_else(|| lookup_str(record, "dateEntered"));
    let created = match (
        last_updated.and_then(Timestamp::parse),
        date_entered.and_then(Timestamp::parse),
    ) {
        (Some(updated), Some(entered)) => {
            updated.abs_diff_nanos(entered) <= resource.created_tolerance_nanos
        }
        _ => false,
    };
    Ok(NormalizedEvent {
        event_type: if created {
            EventType::Created
        } else {
            EventType::Updated
        },
        object_type: object_type.to_owned(),
        object_id,
        date: last_updated.unwrap_or_default().to_owned(),
        raw: record.to_string(),
    })
}

#[cfg(test)]
#[path = "poll_tests.rs"]
mod tests;
