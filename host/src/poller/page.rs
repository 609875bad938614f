//! One poll of one resource: the window from the checkpoint (less
//! `pollDelay`) to the poll's start, read page by page.
//!
//! For each page the element's `prepare-poll` completes the host's draft
//! (the filled URL template; the page number rides in the poll context).
//! An element that answers `unsupported` gets the draft sent as it is, with
//! the host's own paging: the vendor's `Link: rel="next"` target, or
//! `page`/`pageSize` query parameters. The vendor's answer goes to the
//! element's `map-poll`, or to the generic mapping when that answers
//! `unsupported`. Each page's events are stored with their notifications as
//! soon as the page is read; the page that ends the window also moves the
//! checkpoint, in the same transaction.

use bytes::Bytes;
use http_body_util::Full;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::PollError;
use super::mapping::{self, Window};
use super::plan::Plan;
use super::store_page::{store_page, PageEvents};
use super::Shared;
use crate::instance::resources::Resource;
use crate::registry::LoadedPlugin;
use crate::runtime::{
    CallError, CallLabel, ElementError, Header, HttpRequest, HttpResponse, PollContext,
};

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

/// How the page after this one is reached.
enum Next {
    /// The element built the request.
    Request(HttpRequest),
    /// The vendor named it (`Link: rel="next"`).
    Url(String),
    /// The page was full: ask for the next page number.
    Page,
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
    let resource = target.resource;
    let window = Window {
        since: checkpoint - resource.poll_delay,
        until,
    };
    let draft = resource
        .url
        .as_ref()
        .map(|t| t.fill(window.since, &resource.zone))
        .unwrap_or_default();
    let mut polled = Polled {
        events: 0,
        pages: 0,
        checkpoint: until,
    };
    let mut next = None;
    loop {
        let page = polled.pages + 1;
        if page > target.shared.config.max_pages {
            return Err(PollError::Setup(format!(
                "more than {} pages in one poll; the vendor keeps naming a next page",
                target.shared.config.max_pages
            )));
        }
        let context = context(resource, window, page);
        let request = match next.take() {
            Some(Next::Request(request)) => request,
            Some(Next::Url(url)) => prepare(target, &context, &draft, Some(url)).await?,
            None | Some(Next::Page) => prepare(target, &context, &draft, None).await?,
        };
        let response = send(target, &request).await?;
        let (events, following) = map(target, &context, window, &request, &response).await?;
        polled.pages = page;
        let closes = following.is_none();
        polled.events += events.events.len() as u64;
        store_page(target, &request, &response, events, closes.then_some(until)).await?;
        match following {
            None => return Ok(polled),
            Some(n) => next = Some(n),
        }
    }
}

/// The poll context the element sees for `page`.
fn context(resource: &Resource, window: Window, page: u32) -> PollContext {
    let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    PollContext {
        resource_name: resource.name.clone(),
        resource_config: resource.config_json.clone(),
        since: rfc3339(window.since),
        until: rfc3339(window.until),
        page,
    }
}

fn label(target: &Target<'_>) -> CallLabel {
    CallLabel {
        element: target.plan.element_key.clone(),
        instance: Some(target.plan.id),
    }
}

/// The request for one page: the element's, or the host's own when the
/// element does not prepare requests. `link` is the vendor's next-page URL.
async fn prepare(
    target: &Target<'_>,
    context: &PollContext,
    draft: &str,
    link: Option<String>,
) -> Result<HttpRequest, PollError> {
    let draft_request = HttpRequest {
        method: "GET".into(),
        url: draft.to_string(),
        query: String::new(),
        headers: vec![Header {
            name: "accept".into(),
            value: "application/json".into(),
        }],
        body: Vec::new(),
    };
    let prepared = target
        .plugin
        .plugin
        .prepare_poll(label(target), &target.plan.config, context, &draft_request)
        .await;
    match prepared {
        Ok(request) => Ok(request),
        Err(CallError::Element(ElementError::Unsupported(_))) => {
            generic_request(target.resource, draft_request, context.page, link)
        }
        Err(e) => Err(PollError::Plugin(format!("prepare-poll: {e}"))),
    }
}

/// The host's own request for a page: the draft (or the vendor's `Link`),
/// with `page`/`pageSize` when the resource pages that way.
fn generic_request(
    resource: &Resource,
    mut request: HttpRequest,
    page: u32,
    link: Option<String>,
) -> Result<HttpRequest, PollError> {
    let base = link.unwrap_or_else(|| request.url.clone());
    let mut url = url::Url::parse(&base).map_err(|_| {
        PollError::Setup(format!(
            "the element does not prepare poll requests, so `url` of resource {} must be an \
             absolute http(s) URL",
            resource.name
        ))
    })?;
    if let Some(size) = resource.page_size.filter(|_| base == request.url) {
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("pageSize", &size.to_string());
    }
    request.url = url.to_string();
    Ok(request)
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

/// The page's events and how to reach the next page, by the element's
/// mapping or the generic one.
async fn map(
    target: &Target<'_>,
    context: &PollContext,
    window: Window,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Result<(PageEvents, Option<Next>), PollError> {
    let mapped = target
        .plugin
        .plugin
        .map_poll(label(target), &target.plan.config, context, response)
        .await;
    match mapped {
        Ok(page) => {
            let events = PageEvents::from_plugin(target.resource, window, page.events)?;
            Ok((events, page.next.map(Next::Request)))
        }
        Err(CallError::Element(ElementError::Unsupported(_))) => {
            let page = mapping::map_page(target.resource, &response.body, window)
                .map_err(PollError::Answer)?;
            let link = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("link"))
                .and_then(|h| mapping::link_next(&h.value))
                .map(|next| resolve(&request.url, next));
            let full = target
                .resource
                .page_size
                .is_some_and(|size| page.records as u64 >= u64::from(size));
            let next = match link {
                Some(url) => Some(Next::Url(url)),
                None if full => Some(Next::Page),
                None => None,
            };
            Ok((PageEvents::generic(page.events), next))
        }
        Err(e) => Err(PollError::Plugin(format!("map-poll: {e}"))),
    }
}

/// A `Link` target resolved against the request's URL.
fn resolve(base: &str, target: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(target))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| target.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::instance::resources::parse_all;

    fn resource(config: serde_json::Value) -> Resource {
        let all = json!({"event.poller.configuration": {"items": config}});
        parse_all(all.as_object().unwrap()).unwrap().remove(0)
    }

    fn draft(url: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn the_host_pages_by_page_size_or_follows_the_vendors_link() {
        let paged = resource(json!({"pageSize": 50}));
        let request =
            generic_request(&paged, draft("https://v.example/items?x=1"), 3, None).unwrap();
        assert_eq!(
            request.url,
            "https://v.example/items?x=1&page=3&pageSize=50"
        );
        let link = Some("https://v.example/items?cursor=abc".to_string());
        let request =
            generic_request(&paged, draft("https://v.example/items?x=1"), 2, link).unwrap();
        assert_eq!(request.url, "https://v.example/items?cursor=abc");
        let unpaged = resource(json!({}));
        let request = generic_request(&unpaged, draft("https://v.example/items"), 1, None).unwrap();
        assert_eq!(request.url, "https://v.example/items");
    }

    #[test]
    fn a_relative_url_needs_an_element_that_prepares_requests() {
        let err = generic_request(&resource(json!({})), draft("/items"), 1, None).unwrap_err();
        assert!(err.to_string().contains("must be an absolute"), "{err}");
    }

    #[test]
    fn link_targets_resolve_against_the_request() {
        assert_eq!(
            resolve("https://v.example/a/items?page=1", "/a/items?page=2"),
            "https://v.example/a/items?page=2"
        );
        assert_eq!(
            resolve("https://v.example/a/items", "https://w.example/x"),
            "https://w.example/x"
        );
    }
}
