//! Reading one poll window page by page, the element's side of it: for
//! each page the element's `prepare-poll` completes the host's draft (the
//! filled URL template; the page number rides in the poll context), or the
//! host pages itself when the element answers `unsupported` (the vendor's
//! `Link: rel="next"` target, or `page`/`pageSize` query parameters); the
//! vendor's answer goes to the element's `map-poll`, or to the generic
//! mapping when that answers `unsupported`.
//!
//! Where the requests go and what becomes of each page is the caller's
//! ([`PageIo`]): the poller sends them through the outbound policy and
//! stores each page ([`super::page`]); `plugboard plugins run --poll`
//! answers them from fixture files and prints the pages.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::PollError;
use super::mapping::{self, Window};
pub(crate) use super::store_page::PageEvents;
use crate::instance::resources::Resource;
use crate::runtime::{
    CallError, CallLabel, ElementError, ElementPlugin, Header, HttpRequest, HttpResponse,
    PollContext,
};

/// The element a window is read with: its plugin, the call's label, the
/// instance configuration as the plugin sees it, and the resource.
pub(crate) struct Element<'a> {
    pub(crate) plugin: &'a ElementPlugin,
    pub(crate) label: CallLabel,
    pub(crate) config: &'a Vec<(String, String)>,
    pub(crate) resource: &'a Resource,
}

/// Where one window's requests go and what becomes of its pages.
pub(crate) trait PageIo {
    /// Sends a page's request; a non-2xx answer is an error.
    async fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, PollError>;

    /// Takes one page's events; `closes` when it is the window's last page.
    async fn page(
        &mut self,
        request: &HttpRequest,
        response: &HttpResponse,
        events: PageEvents,
        closes: bool,
    ) -> Result<(), PollError>;
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

/// Reads `window` of the element's resource, at most `max_pages` pages;
/// returns how many were read.
pub(crate) async fn read_window(
    element: &Element<'_>,
    window: Window,
    max_pages: u32,
    io: &mut impl PageIo,
) -> Result<u32, PollError> {
    let resource = element.resource;
    let draft = resource
        .url
        .as_ref()
        .map(|t| t.fill(window.since, &resource.zone))
        .unwrap_or_default();
    let mut next = None;
    for page in 1.. {
        if page > max_pages {
            return Err(PollError::Setup(format!(
                "more than {max_pages} pages in one poll; the vendor keeps naming a next page"
            )));
        }
        let context = context(resource, window, page);
        let request = match next.take() {
            Some(Next::Request(request)) => request,
            Some(Next::Url(url)) => prepare(element, &context, &draft, Some(url)).await?,
            None | Some(Next::Page) => prepare(element, &context, &draft, None).await?,
        };
        let response = io.send(&request).await?;
        let (events, following) = map(element, &context, window, &request, &response).await?;
        io.page(&request, &response, events, following.is_none())
            .await?;
        match following {
            None => return Ok(page),
            Some(n) => next = Some(n),
        }
    }
    unreachable!("the page count is bounded by max_pages")
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

/// The request for one page: the element's, or the host's own when the
/// element does not prepare requests. `link` is the vendor's next-page URL.
async fn prepare(
    element: &Element<'_>,
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
    let prepared = element
        .plugin
        .prepare_poll(
            element.label.clone(),
            element.config,
            context,
            &draft_request,
        )
        .await;
    match prepared {
        Ok(request) => Ok(request),
        Err(CallError::Element(ElementError::Unsupported(_))) => {
            generic_request(element.resource, draft_request, context.page, link)
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

/// The page's events and how to reach the next page, by the element's
/// mapping or the generic one.
async fn map(
    element: &Element<'_>,
    context: &PollContext,
    window: Window,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Result<(PageEvents, Option<Next>), PollError> {
    let mapped = element
        .plugin
        .map_poll(element.label.clone(), element.config, context, response)
        .await;
    match mapped {
        Ok(page) => {
            let events = PageEvents::from_plugin(element.resource, window, page.events)?;
            Ok((events, page.next.map(Next::Request)))
        }
        Err(CallError::Element(ElementError::Unsupported(_))) => {
            let page = mapping::map_page(element.resource, &response.body, window)
                .map_err(PollError::Answer)?;
            let link = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("link"))
                .and_then(|h| mapping::link_next(&h.value))
                .map(|next| resolve(&request.url, next));
            let full = element
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
