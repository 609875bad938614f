//! `plugboard plugins run --poll RESOURCE`: reads one poll window of a
//! resource offline, exactly as the poller would ([`crate::poller::reading`]:
//! the element's `prepare-poll` and `map-poll`, or the host's own paging and
//! generic mapping where the element answers `unsupported`), with every
//! page's request answered from a fixture file, and describes the pages as
//! JSON.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::accept::NewEvent;
use crate::instance::resources::parse_all;
use crate::poller::mapping::Window;
use crate::poller::reading::{read_window, Element, PageEvents, PageIo};
use crate::poller::PollError;
use crate::runtime::{CallLabel, ElementPlugin, HttpRequest, HttpResponse};

/// Most pages one offline poll reads (the poller's default).
const MAX_PAGES: u32 = 100;

/// What to poll: the resource, the window and the recorded answers.
pub(super) struct PollRun<'a> {
    pub(super) resource: &'a str,
    pub(super) configuration: &'a Map<String, Value>,
    pub(super) since: Option<&'a str>,
    pub(super) until: Option<&'a str>,
    pub(super) answers: BTreeMap<String, HttpResponse>,
}

fn instant(flag: &str, text: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).with_context(|| {
        format!("{flag} {text:?} is not an RFC 3339 time (e.g. 2026-11-27T10:00:00Z)")
    })
}

impl PollRun<'_> {
    /// The window: from `--since` (the checkpoint; default an hour before
    /// `--until`) less the resource's `pollDelay`, to `--until` (default now).
    fn window(&self, poll_delay: time::Duration) -> anyhow::Result<Window> {
        let until = match self.until {
            Some(text) => instant("--until", text)?,
            None => OffsetDateTime::now_utc(),
        };
        let checkpoint = match self.since {
            Some(text) => instant("--since", text)?,
            None => until - time::Duration::hours(1),
        };
        anyhow::ensure!(checkpoint < until, "--since must be before --until");
        Ok(Window {
            since: checkpoint - poll_delay,
            until,
        })
    }

    /// Reads the window with `plugin`; the result as JSON (an error is a
    /// result too, with the pages read before it).
    pub(super) async fn run(self, plugin: &ElementPlugin) -> anyhow::Result<Value> {
        let resources = parse_all(self.configuration).map_err(|e| anyhow::anyhow!("{e}"))?;
        let names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
        let Some(resource) = resources.iter().find(|r| r.name == self.resource) else {
            anyhow::bail!(
                "the configuration's event.poller.configuration has no resource {:?} (it has: {})",
                self.resource,
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            );
        };
        let window = self.window(resource.poll_delay)?;
        let config = crate::instance::plugin_config(self.configuration);
        let element = Element {
            plugin,
            label: CallLabel {
                element: plugin.description().key.clone(),
                instance: None,
            },
            config: &config,
            resource,
        };
        let mut io = Fixtures {
            answers: self.answers,
            fetched: Vec::new(),
            pages: Vec::new(),
        };
        let read = read_window(&element, window, MAX_PAGES, &mut io).await;
        let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        let mut out = match read {
            Ok(_) => json!({"outcome": "polled"}),
            Err(e) => json!({"outcome": "error", "message": e.to_string()}),
        };
        out["resource"] = resource.name.clone().into();
        out["window"] = json!({"since": rfc3339(window.since), "until": rfc3339(window.until)});
        out["pages"] = io.pages.into();
        out["fetched"] = io.fetched.into();
        Ok(out)
    }
}

/// Page requests answered from the fixtures, pages collected as JSON.
struct Fixtures {
    answers: BTreeMap<String, HttpResponse>,
    fetched: Vec<String>,
    pages: Vec<Value>,
}

impl PageIo for Fixtures {
    async fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, PollError> {
        self.fetched.push(request.url.clone());
        let Some(answer) = self.answers.get(&request.url) else {
            return Err(PollError::Fetch(crate::outbound::FetchError::Failed(
                format!(
                    "no fixture answers {} {} (--fetch {}=FILE)",
                    request.method, request.url, request.url
                ),
            )));
        };
        if !(200..300).contains(&answer.status) {
            return Err(PollError::Vendor {
                status: answer.status,
                retry_after: None,
            });
        }
        Ok(answer.clone())
    }

    async fn page(
        &mut self,
        request: &HttpRequest,
        response: &HttpResponse,
        events: PageEvents,
        closes: bool,
    ) -> Result<(), PollError> {
        let headers: Map<String, Value> = request
            .headers
            .iter()
            .map(|h| (h.name.clone(), Value::String(h.value.clone())))
            .collect();
        let mut shown = json!({"method": request.method, "url": request.url, "headers": headers});
        if !request.body.is_empty() {
            shown["body"] = String::from_utf8_lossy(&request.body).into();
        }
        self.pages.push(json!({
            "request": shown,
            "status": response.status,
            "events": events.events.iter().map(event).collect::<Vec<_>>(),
            "last": closes,
        }));
        Ok(())
    }
}

/// An event as `plugins run` shows it (as for webhooks).
fn event(event: &NewEvent) -> Value {
    json!({
        "eventType": event.event_type.as_str().to_ascii_lowercase(),
        "objectType": event.object_type,
        "objectId": event.object_id,
        "date": event.date.format(&Rfc3339).unwrap_or_default(),
        "raw": super::run::json_or_text(event.raw.get()),
    })
}
