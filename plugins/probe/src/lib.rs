//! `probe`: a test-only element plugin for the host's sandbox tests.
//!
//! It misbehaves on request so that the host's limits can be exercised with a
//! real component: the path of the inbound request picks what it does, or,
//! when present, the header `x-probe-action` (`loop`, `alloc`, `trap`, …)
//! does, so that requests through the host's fixed webhook routes can too.
//!
//! | path ends with  | behaviour                                                    |
//! |-----------------|--------------------------------------------------------------|
//! | `/loop`         | spins forever (the host's fuel or epoch limit must stop it)  |
//! | `/alloc`        | allocates without bound (the host's memory cap must stop it) |
//! | `/trap`         | panics, which aborts the instance with a trap                |
//! | `/fetch`        | GETs `url=<percent-encoded URL>` from the query via the host |
//! | `/bad`          | answers `bad-request`                                        |
//! | `/unauthorized` | answers `unauthorized`                                       |
//! | `/remember`     | accepts one event telling what the previous call left behind |
//! | `/clock`        | accepts one event dated by the host's clock (see below)      |
//! | anything else   | accepts one `created` event describing the request           |
//!
//! `/clock` reads the host's clock (`now-unix-millis`, `now-rfc3339`) and
//! hex helpers: with a header `x-probe-timestamp` (Unix seconds) further
//! than 300 s from the host's time it answers `unauthorized`, as a vendor
//! signature's timestamp tolerance would; otherwise the event's date is the
//! host's RFC 3339 time and its raw JSON carries both clock readings and
//! `hex-encode` of the body.
//!
//! A panic's message is written to the host's log at error level (a panic
//! hook) before the instance aborts, so the host shows it in the call's
//! error.
//!
//! `/remember`'s event also names the configuration keys and the headers
//! the call was given, so the host's tests can see which ones reach an
//! element.
//!
//! It does not poll: `prepare-poll` and `map-poll` answer `unsupported`.
//!
//! It declares itself `stateless` but, for `/remember`, deliberately keeps
//! the previous call's `probe.note` in a global: the host's tests use it to
//! see when a warm instance is reused and that one instance's calls never
//! see another's data.

use std::cell::RefCell;
use std::hint::black_box;

mod bindings {
    //! Rust bindings of the `element-plugin` world.
    #![allow(missing_docs)]

    wit_bindgen::generate!({
        path: "../../wit",
        world: "element-plugin",
    });
}

use bindings::exports::plugboard::element::element::Guest;
use bindings::plugboard::element::host;
use bindings::plugboard::element::types::{
    Config, ConfigKey, ElementError, ElementInfo, EventModes, EventType, FetchError, Header,
    HttpRequest, HttpResponse, NormalizedEvent, PollContext, PollPage, WebhookEvents,
    WebhookOutcome,
};

/// Header whose value becomes the event's object id.
const ID_HEADER: &str = "x-probe-id";
/// Header that picks the behaviour instead of the path (`loop`, `trap`, …).
const ACTION_HEADER: &str = "x-probe-action";
/// Header with the Unix seconds `/clock` checks against the host's clock.
const TIMESTAMP_HEADER: &str = "x-probe-timestamp";
/// Header whose value becomes the webhook's message id.
const MESSAGE_ID_HEADER: &str = "x-probe-message-id";

/// What the probe does with one inbound request, chosen by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Spin forever.
    Loop,
    /// Allocate without bound.
    Alloc,
    /// Panic.
    Trap,
    /// Fetch the URL named in the query through the host.
    Fetch,
    /// Answer `bad-request`.
    Bad,
    /// Answer `unauthorized`.
    Unauthorized,
    /// Accept one event about what the previous call left behind.
    Remember,
    /// Accept one event dated by the host's clock.
    Clock,
    /// Accept one event.
    Accept,
}

impl Behaviour {
    /// Picks the behaviour for a request: its `x-probe-action` header, else its path.
    fn for_request(request: &HttpRequest) -> Self {
        if cfg!(feature = "broken") {
            // The `probe-broken` build: every webhook traps.
            return Behaviour::Trap;
        }
        match header(&request.headers, ACTION_HEADER) {
            Some(action) => Self::for_path(&format!("/{action}")),
            None => Self::for_path(&request.url),
        }
    }

    /// Picks the behaviour for a request path.
    fn for_path(path: &str) -> Self {
        const SUFFIXES: [(&str, Behaviour); 8] = [
            ("/loop", Behaviour::Loop),
            ("/alloc", Behaviour::Alloc),
            ("/trap", Behaviour::Trap),
            ("/fetch", Behaviour::Fetch),
            ("/bad", Behaviour::Bad),
            ("/unauthorized", Behaviour::Unauthorized),
            ("/remember", Behaviour::Remember),
            ("/clock", Behaviour::Clock),
        ];
        SUFFIXES
            .iter()
            .find(|(suffix, _)| path.ends_with(suffix))
            .map_or(Behaviour::Accept, |&(_, behaviour)| behaviour)
    }
}

/// Spins forever; `black_box` keeps the optimizer from removing the loop.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB blocks until the allocator gives up.
fn hoard_memory() -> ! {
    const BLOCK: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xA5; BLOCK]);
        black_box(&mut hoard);
    }
}

/// The value of the first header named `name` (names arrive lower-cased).
fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Decodes `%XX` escapes and `+` (as a space) of a query component.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "decoded value is not UTF-8".to_owned())
}

/// The decoded value of the query parameter `name`, if present.
fn query_param(query: &str, name: &str) -> Result<Option<String>, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
        .transpose()
}

/// Renders a fetch error as the text the probe answers with.
fn render_fetch_error(error: &FetchError) -> String {
    match error {
        FetchError::Denied(why) => format!("denied: {why}"),
        FetchError::Timeout => "timeout".to_owned(),
        FetchError::TooLarge => "too-large".to_owned(),
        FetchError::Failed(why) => format!("failed: {why}"),
    }
}

/// Turns the outcome of a host fetch into the probe's answer: 200 with the
/// fetched body, or 502 with the error as text.
fn fetch_response(outcome: Result<HttpResponse, FetchError>) -> HttpResponse {
    match outcome {
        Ok(fetched) => HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: fetched.body,
        },
        Err(error) => HttpResponse {
            status: 502,
            headers: vec![Header {
                name: "content-type".to_owned(),
                value: "text/plain; charset=utf-8".to_owned(),
            }],
            body: render_fetch_error(&error).into_bytes(),
        },
    }
}

/// The single `created` event the probe accepts for an ordinary request.
fn accept(request: &HttpRequest) -> WebhookEvents {
    let object_id = header(&request.headers, ID_HEADER)
        .map_or_else(|| request.body.len().to_string(), str::to_owned);
    let raw = match serde_json::from_slice::<serde_json::Value>(&request.body) {
        Ok(_) => String::from_utf8_lossy(&request.body).into_owned(),
        Err(_) => "null".to_owned(),
    };
    WebhookEvents {
        message_id: header(&request.headers, MESSAGE_ID_HEADER).map(str::to_owned),
        events: vec![NormalizedEvent {
            event_type: EventType::Created,
            object_type: "probe".to_owned(),
            object_id,
            date: String::new(),
            raw,
        }],
        raw: None,
    }
}

thread_local! {
    /// What earlier calls of this instance of the component left behind:
    /// how many `/remember` calls it served, and the last one's note.
    static MEMORY: RefCell<(u64, Option<String>)> = const { RefCell::new((0, None)) };
}

/// The `created` event of a `/remember` call, whose raw (and the
/// notification's) tells its own `probe.note`, the note of the previous
/// `/remember` call this instance of the component served (null in a fresh
/// one), how many it served before, and the configuration keys and the
/// names of the headers the call was given.
fn remember(config: &Config, request: &HttpRequest) -> WebhookEvents {
    let note = config
        .iter()
        .find(|(key, _)| key == "probe.note")
        .map(|(_, value)| value.clone());
    let (calls, previous) = MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let before = (memory.0, memory.1.take());
        *memory = (before.0 + 1, note.clone());
        before
    });
    let keys: Vec<&str> = config.iter().map(|(key, _)| key.as_str()).collect();
    let headers: Vec<&str> = request.headers.iter().map(|h| h.name.as_str()).collect();
    let raw = serde_json::json!({
        "note": note,
        "previous": previous,
        "calls": calls,
        "keys": keys,
        "headers": headers,
    });
    let mut events = accept(request);
    events.events[0].raw = raw.to_string();
    events.raw = Some(raw.to_string());
    events
}

/// Largest distance, in seconds, between `x-probe-timestamp` and the
/// host's clock that `/clock` accepts.
const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// The event of a `/clock` call, or `unauthorized` when the request's
/// `x-probe-timestamp` is outside the tolerance.
fn clock(request: &HttpRequest) -> Result<WebhookEvents, ElementError> {
    let now_ms = host::now_unix_millis();
    if let Some(sent) = header(&request.headers, TIMESTAMP_HEADER) {
        let sent: i64 = sent.trim().parse().map_err(|_| {
            ElementError::BadRequest(format!("{TIMESTAMP_HEADER} is not Unix seconds: {sent:?}"))
        })?;
        let skew = (now_ms / 1000 - sent).abs();
        if skew > TIMESTAMP_TOLERANCE_SECS {
            return Err(ElementError::Unauthorized(format!(
                "timestamp is {skew} s from the host's clock (tolerance {TIMESTAMP_TOLERANCE_SECS} s)"
            )));
        }
    }
    let hex = host::hex_encode(&request.body);
    let round_trip = host::hex_decode(&hex).map_err(ElementError::Internal)?;
    if round_trip != request.body {
        return Err(ElementError::Internal(
            "hex-decode did not give back what hex-encode was given".to_owned(),
        ));
    }
    let rfc3339 = host::now_rfc3339();
    let mut events = accept(request);
    events.events[0].date = rfc3339.clone();
    events.events[0].raw =
        serde_json::json!({ "unixMillis": now_ms, "rfc3339": rfc3339, "bodyHex": hex }).to_string();
    Ok(events)
}

/// Routes panic messages to the host's log at error level, once per
/// instance: the host then shows them in the call's error.
fn log_panics() {
    #[cfg(target_arch = "wasm32")]
    {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                host::log(host::LogLevel::Error, &format!("panic: {info}"));
            }));
        });
    }
}

/// The exported element.
struct Probe;

impl Guest for Probe {
    fn describe() -> ElementInfo {
        ElementInfo {
            key: "probe".to_owned(),
            aliases: Vec::new(),
            name: "Probe".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            modes: EventModes::WEBHOOKS,
            config_keys: vec![ConfigKey {
                name: "probe.note".to_owned(),
                required: false,
                secret: false,
                description: "Free text, ignored by the probe.".to_owned(),
            }],
            fetch_hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            fetch_host_config_keys: Vec::new(),
            default_poll_configuration: None,
            // Not true of `/remember`, on purpose (see the module docs).
            stateless: true,
        }
    }

    fn webhook(config: Config, request: HttpRequest) -> Result<WebhookOutcome, ElementError> {
        log_panics();
        match Behaviour::for_request(&request) {
            Behaviour::Loop => spin_forever(),
            Behaviour::Alloc => hoard_memory(),
            Behaviour::Trap => panic!("probe trap requested"),
            Behaviour::Fetch => {
                let url = query_param(&request.query, "url")
                    .map_err(|why| ElementError::BadRequest(format!("query `url`: {why}")))?
                    .ok_or_else(|| {
                        ElementError::BadRequest("probe needs `url=<URL>` in the query".to_owned())
                    })?;
                let outcome = host::https_get(&url, &[]);
                Ok(WebhookOutcome::Respond(fetch_response(outcome)))
            }
            Behaviour::Bad => Err(ElementError::BadRequest("probe rejects this".to_owned())),
            Behaviour::Unauthorized => Err(ElementError::Unauthorized(
                "probe signature mismatch".to_owned(),
            )),
            Behaviour::Remember => Ok(WebhookOutcome::Accepted(remember(&config, &request))),
            Behaviour::Clock => clock(&request).map(WebhookOutcome::Accepted),
            Behaviour::Accept => Ok(WebhookOutcome::Accepted(accept(&request))),
        }
    }

    fn prepare_poll(
        _config: Config,
        _poll: PollContext,
        _draft: HttpRequest,
    ) -> Result<HttpRequest, ElementError> {
        Err(ElementError::Unsupported("probe does not poll".to_owned()))
    }

    fn map_poll(
        _config: Config,
        _poll: PollContext,
        _response: HttpResponse,
    ) -> Result<PollPage, ElementError> {
        Err(ElementError::Unsupported("probe does not poll".to_owned()))
    }
}

bindings::export!(Probe with_types_in bindings);

#[cfg(all(test, not(feature = "broken")))]
mod tests {
    use super::*;

    fn request(url: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".to_owned(),
            url: url.to_owned(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(name, value)| Header {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn behaviour_follows_the_path_suffix() {
        assert_eq!(
            Behaviour::for_path("/events/probe/abc/loop"),
            Behaviour::Loop
        );
        assert_eq!(Behaviour::for_path("/events/probe/alloc"), Behaviour::Alloc);
        assert_eq!(Behaviour::for_path("/x/trap"), Behaviour::Trap);
        assert_eq!(Behaviour::for_path("/x/fetch"), Behaviour::Fetch);
        assert_eq!(Behaviour::for_path("/x/bad"), Behaviour::Bad);
        assert_eq!(Behaviour::for_path("/x/clock"), Behaviour::Clock);
        assert_eq!(
            Behaviour::for_path("/x/unauthorized"),
            Behaviour::Unauthorized
        );
        assert_eq!(
            Behaviour::for_path("/events/probe/MjA5MzE="),
            Behaviour::Accept
        );
        assert_eq!(Behaviour::for_path("/x/remember"), Behaviour::Remember);
        assert_eq!(Behaviour::for_path("/x/loops"), Behaviour::Accept);
    }

    #[test]
    fn query_url_is_percent_decoded() {
        let query = "a=1&url=https%3A%2F%2Flocalhost%3A8443%2Fkey%3Fid%3D7";
        assert_eq!(
            query_param(query, "url").unwrap().as_deref(),
            Some("https://localhost:8443/key?id=7")
        );
        assert_eq!(query_param("a=1", "url").unwrap(), None);
        assert!(query_param("url=%zz", "url").is_err());
        assert!(query_param("url=%4", "url").is_err());
        assert!(query_param("url=%+1", "url").is_err());
    }

    #[test]
    fn fetch_errors_render_as_text() {
        let cases = [
            (
                FetchError::Denied("host not allowed".to_owned()),
                "denied: host not allowed",
            ),
            (FetchError::Timeout, "timeout"),
            (FetchError::TooLarge, "too-large"),
            (FetchError::Failed("tls".to_owned()), "failed: tls"),
        ];
        for (error, text) in cases {
            let response = fetch_response(Err(error));
            assert_eq!(response.status, 502);
            assert_eq!(response.body, text.as_bytes());
        }
        let ok = fetch_response(Ok(HttpResponse {
            status: 404,
            headers: Vec::new(),
            body: b"hello".to_vec(),
        }));
        assert_eq!((ok.status, ok.body.as_slice()), (200, b"hello".as_slice()));
    }

    #[test]
    fn accepted_event_uses_headers_when_present() {
        let events = accept(&request(
            "/e",
            &[(ID_HEADER, "42"), (MESSAGE_ID_HEADER, "m-1")],
            r#"{"a":1}"#,
        ));
        assert_eq!(events.message_id.as_deref(), Some("m-1"));
        let event = &events.events[0];
        assert_eq!(event.event_type, EventType::Created);
        assert_eq!(event.object_type, "probe");
        assert_eq!(event.object_id, "42");
        assert_eq!(event.raw, r#"{"a":1}"#);
        assert!(event.date.is_empty());
    }

    #[test]
    fn accepted_event_falls_back_to_body_length_and_null() {
        let events = accept(&request("/e", &[], "not json"));
        assert_eq!(events.message_id, None);
        assert_eq!(events.events[0].object_id, "8");
        assert_eq!(events.events[0].raw, "null");
        assert!(events.raw.is_none());
    }
}
