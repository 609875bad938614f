//! The event log's search parameters (SPEC §3): which notifications a
//! listing or a redelivery by search wants, checked — a bad value is a
//! `400` naming its parameter — and turned into a [`NotificationQuery`].

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ApiError;
use crate::store::{DeliveryState, NotificationQuery};

/// Query parameters of the event log; any other is refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Page size (default 100, at most 500).
    page_size: Option<u32>,
    /// Cursor: the `nextPage` value of the previous page.
    next_page: Option<String>,
    /// Only entries stored at or after this time (RFC 3339).
    from: Option<String>,
    /// Only entries stored before this time (RFC 3339).
    to: Option<String>,
    /// Only entries in this status.
    status: Option<String>,
    /// Only entries with an event about an object of this type.
    object_type: Option<String>,
    /// Only entries with an event about the object with this id.
    object_id: Option<String>,
    /// Only entries with an event of this type.
    event_type: Option<String>,
    /// Only entries of instances of this element.
    element_key: Option<String>,
    /// Only entries of this instance (`GET /instances/events`; the
    /// instance's own route already names it).
    instance_id: Option<i64>,
}

/// Longest `objectType`, `objectId` or `elementKey` searched for.
const MAX_TERM: usize = 500;

/// A search term: given, not empty, not too long.
fn term(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.is_empty() => Err(ApiError::invalid_field(name, "must not be empty")),
        Some(s) if s.len() > MAX_TERM => Err(ApiError::invalid_field(
            name,
            format!("at most {MAX_TERM} bytes"),
        )),
        other => Ok(other),
    }
}

fn event_type(v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|s| match s.to_ascii_uppercase().as_str() {
        t @ ("CREATED" | "UPDATED" | "DELETED" | "UNKNOWN") => Ok(t.to_owned()),
        _ => Err(ApiError::invalid_field(
            "eventType",
            "expected CREATED, UPDATED, DELETED or UNKNOWN",
        )),
    })
    .transpose()
}

/// Most entries one page returns.
const MAX_PAGE: u32 = 500;

impl ListParams {
    /// The page these parameters ask for.
    pub(super) fn page(&self, instance_id: Option<i64>) -> Result<NotificationQuery, ApiError> {
        Ok(NotificationQuery {
            after: self.next_page.clone(),
            limit: self.page_size.unwrap_or(100).clamp(1, MAX_PAGE),
            ..self.search(instance_id)?
        })
    }

    /// Everything these parameters find, for a redelivery: paging is
    /// refused, and at least one condition is required, so a redelivery of
    /// the whole log is never one missing parameter away.
    pub(super) fn everything(&self) -> Result<NotificationQuery, ApiError> {
        for (name, given) in [
            ("pageSize", self.page_size.is_some()),
            ("nextPage", self.next_page.is_some()),
        ] {
            if given {
                return Err(ApiError::invalid_field(
                    name,
                    "a redelivery takes every match; it is not paged",
                ));
            }
        }
        let query = self.search(None)?;
        if query == NotificationQuery::default() {
            return Err(ApiError::bad_request(
                "name at least one of instanceId, elementKey, status, objectType, objectId, \
                 eventType, from, to",
            ));
        }
        Ok(query)
    }

    /// The search these parameters ask for (without paging), checked: a
    /// bad value is an error naming its parameter.
    fn search(&self, instance_id: Option<i64>) -> Result<NotificationQuery, ApiError> {
        if let (Some(route), Some(param)) = (instance_id, self.instance_id) {
            if route != param {
                return Err(ApiError::invalid_field(
                    "instanceId",
                    format!("the route is instance {route}'s events"),
                ));
            }
        }
        let (state, attempted) = match self.status.as_deref() {
            Some(s) => {
                let (st, at) = parse_status(s)?;
                (Some(st), at)
            }
            None => (None, None),
        };
        let since = date("from", self.from.as_ref())?;
        let until = date("to", self.to.as_ref())?;
        if let (Some(from), Some(to)) = (since, until) {
            if from > to {
                return Err(ApiError::invalid_field("to", "is before from"));
            }
        }
        Ok(NotificationQuery {
            instance_id: instance_id.or(self.instance_id),
            state,
            attempted,
            since,
            until,
            element_key: term("elementKey", self.element_key.clone())?,
            object_type: term("objectType", self.object_type.clone())?,
            object_id: term("objectId", self.object_id.clone())?,
            event_type: event_type(self.event_type.clone())?,
            ..NotificationQuery::default()
        })
    }
}

/// A date parameter, RFC 3339; a bad one is an error naming it.
pub(crate) fn date(name: &str, v: Option<&String>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| ApiError::invalid_field(name, format!("not an RFC 3339 date: {e}")))
    })
    .transpose()
}

fn parse_status(s: &str) -> Result<(DeliveryState, Option<bool>), ApiError> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "RECEIVED" => (DeliveryState::Pending, Some(false)),
        "DISPATCHED" => (DeliveryState::Pending, Some(true)),
        "NOTIFIED" => (DeliveryState::Delivered, None),
        "FAILED" => (DeliveryState::Dead, None),
        "FILTERED" => (DeliveryState::Filtered, None),
        _ => {
            return Err(ApiError::invalid_field(
                "status",
                "expected RECEIVED, DISPATCHED, NOTIFIED, FAILED or FILTERED",
            ))
        }
    })
}
