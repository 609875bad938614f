//! One poll of one resource: the window from the checkpoint (less
//! `pollDelay`) to the poll's start, read page by page with the element
//! ([`super::reading`]), each request sent through the outbound policy and
//! each page's events stored with their notifications as soon as the page
//! is read; the page that ends the window also moves the checkpoint, in the
//! same transaction.

use bytes::Bytes;
use http_body_util::Full;
use time::OffsetDateTime;

use super::error::PollError;
use super::mapping::Window;
use super::plan::Plan;
use super::reading::{read_window, Element, PageEvents, PageIo};
use super::store_page::store_page;
use super::Shared;
use crate::instance::resources::Resource;
use crate::registry::LoadedPlugin;
use crate::runtime::{CallLabel, HttpRequest, HttpResponse};

/// What a successful poll of a resource did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Polled {
    /// Events stored.
    pub events: u64,
    /// Pages read.
    pub pages: u32,
    /// The resource's new checkpoint.
    pub checkpoint: OffsetDateTime,
}

/// Everything one resource's poll needs.
pub(super) struct Target<'a> {
    pub shared: &'a Shared,
    pub plan: &'a Plan,
    pub plugin: &'a LoadedPlugin,
    pub resource: &'a Resource,
    /// The partition lease the poll started under, if the store is shared.
    pub fence: Option<&'a crate::store::Fence>,
}

/// Polls the window `(checkpoint - pollDelay, until]` of one resource.
#[tracing::instrument(skip_all, fields(instance = target.plan.id, resource = %target.resource.name))]
pub(super) async fn poll_resource(
    target: &Target<'_>,
    checkpoint: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Polled, PollError> {
    let window = Window {
        since: checkpoint - target.resource.poll_delay,
        until,
    };
    let element = Element {
        plugin: &target.plugin.plugin,
        label: CallLabel {
            element: target.plan.element_key.clone(),
            instance: Some(target.plan.id),
        },
        config: &target.plan.config,
        resource: target.resource,
    };
    let mut io = Storing {
        target,
        until,
        events: 0,
    };
    let pages = read_window(&element, window, target.shared.config.max_pages, &mut io).await?;
    Ok(Polled {
        events: io.events,
        pages,
        checkpoint: until,
    })
}

/// The poller's side of a window: requests through the outbound policy,
/// each page stored as soon as it is read (the last one moving the
/// checkpoint to `until`).
struct Storing<'t, 'a> {
    target: &'t Target<'a>,
    until: OffsetDateTime,
    events: u64,
}

impl PageIo for Storing<'_, '_> {
    async fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, PollError> {
        send(self.target, request).await
    }

    async fn page(
        &mut self,
        request: &HttpRequest,
        response: &HttpResponse,
        events: PageEvents,
        closes: bool,
    ) -> Result<(), PollError> {
        self.events += events.events.len() as u64;
        let checkpoint = closes.then_some(self.until);
        store_page(self.target, request, response, events, checkpoint).await
    }
}

/// Sends the request through the outbound policy; a non-2xx answer is a
/// vendor error.
async fn send(target: &Target<'_>, request: &HttpRequest) -> Result<HttpResponse, PollError> {
    let config = &target.shared.config;
    // Elements may leave characters a URI cannot hold (`>`, spaces) for the
    // host to encode.
    let url = url::Url::parse(&request.url)
        .map_err(|e| PollError::Setup(format!("the poll request's URL is not valid: {e}")))?;
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(url.as_str());
    for header in &request.headers {
        builder = builder.header(header.name.as_str(), header.value.as_str());
    }
    let outbound = builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| PollError::Setup(format!("the poll request is malformed: {e}")))?;
    let response = target
        .shared
        .outbound
        .send(outbound, config.request_timeout, config.max_response_bytes)
        .await
        .map_err(PollError::Fetch)?;
    if !response.is_success() {
        let retry_after = response
            .retry_after_secs()
            .map(std::time::Duration::from_secs);
        return Err(PollError::Vendor {
            status: response.status,
            retry_after,
        });
    }
    Ok(HttpResponse::from(&response))
}
