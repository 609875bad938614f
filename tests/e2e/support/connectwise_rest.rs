//! A fake ConnectWise Manage REST API on loopback, speaking the real
//! protocol: `GET {site}/v4_6_release/apis/3.0/{service/tickets,
//! company/companies, company/contacts}` with Basic authentication
//! `{company}+{publicKey}:{privateKey}` and a `clientId` header (401
//! otherwise), the `conditions=lastUpdated>[…]` filter, `page` (from 1) and
//! `pageSize` paging with `Link: <…>; rel="next"`, records carrying
//! `_info.lastUpdated` and `_info.dateEntered`, oldest update first.
//!
//! Tests add records, script faults (a status with `Retry-After`, a
//! malformed body, an answer held until released) and read back every
//! request it saw.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The credentials the fake accepts.
pub const COMPANY: &str = "acme";
/// Public key half of the API member's keys.
pub const PUBLIC_KEY: &str = "pub-key";
/// Private key half.
pub const PRIVATE_KEY: &str = "priv-key";
/// The `clientId` every request must carry.
pub const CLIENT_ID: &str = "client-0123";

const API: &str = "/v4_6_release/apis/3.0";

/// What the next request for a resource gets instead of records.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status, with `Retry-After` seconds if given.
    Status(u16, Option<u64>),
    /// A 200 whose body is not JSON.
    Malformed,
    /// Page `n` of the resource is answered only after [`ConnectWiseRest::release`].
    Hold(u32),
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `tickets`, `companies` or `contacts`.
    pub resource: String,
    /// The `conditions` query parameter, decoded.
    pub conditions: Option<String>,
    /// `page`.
    pub page: u32,
    /// `pageSize`.
    pub page_size: u32,
    /// Whether Basic authentication and `clientId` were right.
    pub authorized: bool,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, by the wall clock (which the hosts share).
    pub wall: OffsetDateTime,
    /// The client's address (which process sent it).
    pub peer: SocketAddr,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Vec<Value>>,
    faults: HashMap<String, VecDeque<Fault>>,
    always: HashMap<String, Fault>,
    seen: Vec<Seen>,
    ignore_conditions: bool,
}

/// The fake API.
#[derive(Clone)]
pub struct ConnectWiseRest {
    /// Its address.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    release: Arc<tokio::sync::Notify>,
}

impl ConnectWiseRest {
    /// Starts the fake on a loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let release = Arc::new(tokio::sync::Notify::new());
        let fake = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            inner,
            release,
        };
        let app = axum::Router::new()
            .route(
                &format!("{API}/{{area}}/{{name}}"),
                axum::routing::get(serve),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, ..fake }
    }

    /// `helpdesk.connectwise.server.url` for instances polling this fake.
    pub fn server_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// The ConnectWise configuration keys of an instance polling this fake.
    pub fn credentials(&self) -> Value {
        credentials(&self.server_url())
    }

    /// Adds a record to `resource`.
    pub fn add(&self, resource: &str, record: Value) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .records
            .entry(resource.into())
            .or_default()
            .push(record);
    }

    /// Answers the next request for `resource` with `fault`.
    pub fn fail_next(&self, resource: &str, fault: Fault) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .faults
            .entry(resource.into())
            .or_default()
            .push_back(fault);
    }

    /// Answers every request for `resource` with `fault` (after scripted ones).
    pub fn fail_always(&self, resource: &str, fault: Fault) {
        self.inner
            .lock()
            .unwrap()
            .always
            .insert(resource.into(), fault);
    }

    /// Serves every record whatever `conditions` says, like an API that
    /// cannot filter by date.
    pub fn ignore_conditions(&self) {
        self.inner.lock().unwrap().ignore_conditions = true;
    }

    /// Lets held answers go.
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// Every request so far, for `resource` (or all when empty).
    pub fn seen(&self, resource: &str) -> Vec<Seen> {
        let inner = self.inner.lock().unwrap();
        inner
            .seen
            .iter()
            .filter(|s| resource.is_empty() || s.resource == resource)
            .cloned()
            .collect()
    }
}

/// The ConnectWise configuration keys of an instance of the fake site at
/// `server_url`, with the credentials the fakes accept.
pub fn credentials(server_url: &str) -> Value {
    json!({
        "helpdesk.connectwise.server.url": server_url,
        "helpdesk.connectwise.company": COMPANY,
        "helpdesk.connectwise.public.key": PUBLIC_KEY,
        "helpdesk.connectwise.private.key": PRIVATE_KEY,
        "helpdesk.connectwise.client.id": CLIENT_ID,
    })
}

/// A ticket-shaped record entered at `entered` and last updated at `updated`.
pub fn record(id: u64, entered: OffsetDateTime, updated: OffsetDateTime) -> Value {
    json!({
        "id": id,
        "summary": format!("record {id}"),
        "_info": {"dateEntered": rfc3339(entered), "lastUpdated": rfc3339(updated)},
    })
}

/// `t` as ConnectWise writes dates: UTC, whole seconds, `Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap()
}

fn resource_of(area: &str, name: &str) -> Option<&'static str> {
    match (area, name) {
        ("service", "tickets") => Some("tickets"),
        ("company", "companies") => Some("companies"),
        ("company", "contacts") => Some("contacts"),
        _ => None,
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{COMPANY}+{PUBLIC_KEY}:{PRIVATE_KEY}"));
    header("authorization") == Some(&format!("Basic {expected}"))
        && header("clientid") == Some(CLIENT_ID)
}

/// `lastUpdated>[2024-01-01T00:00:00Z]` → that instant.
fn updated_after(conditions: &str) -> Option<OffsetDateTime> {
    let inner = conditions
        .trim()
        .strip_prefix("lastUpdated>[")?
        .strip_suffix(']')?;
    OffsetDateTime::parse(inner, &Rfc3339).ok()
}

fn last_updated(record: &Value) -> OffsetDateTime {
    record["_info"]["lastUpdated"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

async fn serve(
    State(fake): State<ConnectWiseRest>,
    Path((area, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(resource) = resource_of(&area, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let page: u32 = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let page_size: u32 = query
        .get("pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let conditions = query.get("conditions").cloned();
    let ok = authorized(&headers);
    let (fault, body, more) = {
        let mut inner = fake.inner.lock().unwrap();
        inner.seen.push(Seen {
            resource: resource.into(),
            conditions: conditions.clone(),
            page,
            page_size,
            authorized: ok,
            at: Instant::now(),
            wall: OffsetDateTime::now_utc(),
            peer,
        });
        let queued = inner.faults.entry(resource.into()).or_default();
        let fault = match queued.front() {
            // A hold waits for the page it names; other pages pass.
            Some(Fault::Hold(n)) if *n != page => None,
            Some(_) => queued.pop_front(),
            None => inner.always.get(resource).cloned(),
        };
        let since = conditions.as_deref().and_then(updated_after);
        let mut records: Vec<Value> = inner
            .records
            .get(resource)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| inner.ignore_conditions || since.is_none_or(|s| last_updated(r) > s))
            .collect();
        records.sort_by_key(last_updated);
        let start = ((page - 1) * page_size) as usize;
        let more = records.len() > start + page_size as usize;
        let body: Vec<Value> = records
            .into_iter()
            .skip(start)
            .take(page_size as usize)
            .collect();
        (fault, body, more)
    };
    if !ok {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut r = StatusCode::from_u16(code).unwrap().into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            return r;
        }
        Some(Fault::Malformed) => {
            return ([("content-type", "application/json")], "[{\"id\": 1,").into_response()
        }
        Some(Fault::Hold(n)) if n == page => fake.release.notified().await,
        Some(Fault::Hold(_)) | None => {}
    }
    let mut response = axum::Json(Value::Array(body)).into_response();
    if more {
        let mut next = query.clone();
        next.insert("page".into(), (page + 1).to_string());
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next.iter())
            .finish();
        let link = format!(
            "<{}{API}/{area}/{name}?{query}>; rel=\"next\"",
            fake.server_url()
        );
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}
