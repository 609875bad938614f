//! Keeping what a poll page found: the events (filtered by the poll window),
//! their notifications (at most 10 events each, as SPEC §3 says for
//! polling) and, on the page that ends the window, the checkpoint, all in
//! one store transaction; then the delivery worker is woken.
//!
//! The events and notifications themselves are made by the accept step
//! ([`crate::accept::poll_page`]), which webhooks go through as well.

use std::time::Duration;

use bytes::Bytes;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::PollError;
use super::mapping::Window;
use super::page::Target;
use crate::accept::{self, InstanceInfo, NewEvent, Recipient};
use crate::instance::resources::Resource;
use crate::runtime::{HttpRequest, HttpResponse, NormalizedEvent};
use crate::store::{NewReceipt, PollWrite};

/// The events of one page, ready to store.
pub(crate) struct PageEvents {
    pub(crate) events: Vec<NewEvent>,
}

impl PageEvents {
    /// Events the generic mapping made (already filtered by the window).
    pub(super) fn generic(events: Vec<NewEvent>) -> Self {
        Self { events }
    }

    /// Events the element mapped: those dated outside the window are
    /// dropped as the resource's filters say, the rest normalized.
    pub(super) fn from_plugin(
        resource: &Resource,
        window: Window,
        events: Vec<NormalizedEvent>,
    ) -> Result<Self, PollError> {
        let inside = |e: &NormalizedEvent| {
            let Ok(date) = OffsetDateTime::parse(&e.date, &Rfc3339) else {
                return true;
            };
            !(resource.filter_by_updated_date && date <= window.since
                || resource.filter_by_current_date && date > window.until)
        };
        let kept: Vec<NormalizedEvent> = events.into_iter().filter(inside).collect();
        accept::normalize(kept, None, window.until)
            .map(|events| Self { events })
            .map_err(|e| PollError::Plugin(format!("map-poll output: {e}")))
    }
}

/// Stores one page. Nothing is written for a page without events that does
/// not end the window.
pub(super) async fn store_page(
    target: &Target<'_>,
    request: &HttpRequest,
    response: &HttpResponse,
    page: PageEvents,
    checkpoint: Option<OffsetDateTime>,
) -> Result<(), PollError> {
    if page.events.is_empty() && checkpoint.is_none() {
        return Ok(());
    }
    let has_events = !page.events.is_empty();
    let receipt = has_events.then(|| receipt(target, request, response, page.events));
    let outcome = target
        .shared
        .store
        .record_poll(PollWrite {
            instance_id: target.plan.id,
            resource: target.resource.name.clone(),
            page: receipt,
            checkpoint,
            fence: target.fence.cloned(),
        })
        .await
        .map_err(|e| PollError::Store(e.to_string()))?;
    if outcome.fenced {
        return Err(PollError::Fenced);
    }
    if has_events {
        target.shared.delivery.wake();
    }
    Ok(())
}

/// The page as a receipt: the request's path (its query may hold
/// credentials, so it is left out), the vendor's headers and body, the
/// events and their notifications.
fn receipt(
    target: &Target<'_>,
    request: &HttpRequest,
    response: &HttpResponse,
    events: Vec<NewEvent>,
) -> NewReceipt {
    let plan = target.plan;
    let recipient = Recipient {
        instance: InstanceInfo {
            id: plan.id,
            name: &plan.name,
            tags: &plan.tags,
            element_key: &plan.element_key,
        },
        format: plan.settings.format,
        filter: &plan.settings.filter,
        ordered: plan.settings.ordered,
    };
    let path = url::Url::parse(&request.url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    NewReceipt {
        instance_id: plan.id,
        element_key: plan.element_key.clone(),
        received_at: OffsetDateTime::now_utc(),
        message_id: None,
        dedup_window: Duration::ZERO,
        method: request.method.clone(),
        path,
        headers: response
            .headers
            .iter()
            .filter(|h| !h.name.eq_ignore_ascii_case("set-cookie"))
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        body: Bytes::from(response.body.clone()),
        outcome: accept::poll_page(&recipient, &target.resource.name, events),
    }
}
