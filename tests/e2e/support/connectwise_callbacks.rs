//! A fake ConnectWise Manage callbacks API over HTTPS on loopback (with a
//! certificate of the test CA), speaking the real protocol:
//! `POST {site}/v4_6_release/apis/3.0/system/callbacks` with a
//! CallbackEntry (`url`, `objectId`, `type`, `level` required, a
//! `description` of at most 100 characters) answers 201 with the entry and
//! its new `id`; `DELETE …/system/callbacks/{id}` answers 204, or 404 for
//! an id it does not have; `GET …/system/callbacks` lists the entries.
//! Every request needs Basic authentication `{company}+{publicKey}:
//! {privateKey}` and the `clientId` header (401 otherwise), and refusals
//! carry ConnectWise's error body (`code`, `message`, `errors`).
//!
//! Tests read back the registered entries and can make it refuse every
//! registration (400 with a ConnectWise error body).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};

use super::connectwise_rest::{CLIENT_ID, COMPANY, PRIVATE_KEY, PUBLIC_KEY};
use super::tls::TestCa;

const CALLBACKS: &str = "/v4_6_release/apis/3.0/system/callbacks";

#[derive(Default)]
struct Inner {
    entries: Vec<Value>,
    next_id: i64,
    refuse: bool,
    fail_deletes: bool,
    deletes: Vec<i64>,
}

/// The fake callbacks API.
#[derive(Clone)]
pub struct ConnectWiseCallbacks {
    /// Its address.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl ConnectWiseCallbacks {
    /// Starts the fake with a certificate from `ca`.
    pub async fn start(ca: &TestCa) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            next_id: 100,
            ..Inner::default()
        }));
        let router = axum::Router::new()
            .route(CALLBACKS, get(list).post(register))
            .route(&format!("{CALLBACKS}/{{id}}"), delete(remove))
            .with_state(inner.clone());
        let addr = ca.serve(router).await;
        Self { addr, inner }
    }

    /// `helpdesk.connectwise.server.url` for instances talking to this fake.
    pub fn server_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The ConnectWise configuration keys of an instance of this fake.
    pub fn credentials(&self) -> Value {
        super::connectwise_rest::credentials(&self.server_url())
    }

    /// Every registered entry, oldest first.
    pub fn entries(&self) -> Vec<Value> {
        self.inner.lock().unwrap().entries.clone()
    }

    /// `(type, url)` of every registered entry, oldest first.
    pub fn registered(&self) -> Vec<(String, String)> {
        self.entries()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or_default().to_owned(),
                    e["url"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The ids DELETE requests named, in order (found or not).
    pub fn deletes(&self) -> Vec<i64> {
        self.inner.lock().unwrap().deletes.clone()
    }

    /// Fail (500) every removal from now on (`true`), or serve them.
    pub fn fail_removals(&self, fail: bool) {
        self.inner.lock().unwrap().fail_deletes = fail;
    }

    /// Refuse (`true`) or accept every registration from now on.
    pub fn refuse_registrations(&self, refuse: bool) {
        self.inner.lock().unwrap().refuse = refuse;
    }
}

/// A ConnectWise error answer.
fn error(status: StatusCode, code: &str, message: &str, errors: Value) -> Response {
    let body = json!({"code": code, "message": message, "errors": errors});
    (status, Json(body)).into_response()
}

/// Whether the request carries the right Basic credentials and clientId.
fn authorized(headers: &HeaderMap) -> bool {
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{COMPANY}+{PUBLIC_KEY}:{PRIVATE_KEY}"));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("authorization") == Some(&format!("Basic {credentials}"))
        && header("clientid") == Some(CLIENT_ID)
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Authorization has been denied for this request.",
        Value::Null,
    )
}

async fn list(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    Json(Value::Array(inner.lock().unwrap().entries.clone())).into_response()
}

async fn register(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let Ok(Value::Object(mut entry)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidObject",
            "callbackEntry object is invalid",
            json!([{"code": "InvalidJson", "message": "The body is not a JSON object."}]),
        );
    };
    for field in ["url", "objectId", "type", "level"] {
        if entry.get(field).is_none_or(Value::is_null) {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "callbackEntry object is invalid",
                json!([{"code": "NullValue", "message": format!("{field} may not be null."),
                        "resource": "callbackEntry", "field": field}]),
            );
        }
    }
    let too_long = entry
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.chars().count() > 100);
    let mut inner = inner.lock().unwrap();
    if too_long || inner.refuse {
        let url = entry["url"].as_str().unwrap_or_default().to_owned();
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidObject",
            "callbackEntry object is invalid",
            json!([{"code": "InvalidField", "message": format!("The url {url} is not reachable."),
                    "resource": "callbackEntry", "field": "url"}]),
        );
    }
    inner.next_id += 1;
    let id = inner.next_id;
    entry.insert("id".into(), json!(id));
    entry.insert("memberId".into(), json!(143));
    entry.insert("inactiveFlag".into(), json!(false));
    entry.insert(
        "_info".into(),
        json!({"lastUpdated": "2026-11-27T06:00:00Z"}),
    );
    let entry = Value::Object(entry);
    inner.entries.push(entry.clone());
    (StatusCode::CREATED, Json(entry)).into_response()
}

async fn remove(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let mut inner = inner.lock().unwrap();
    inner.deletes.push(id);
    if inner.fail_deletes {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An error occurred, please contact support.",
            Value::Null,
        );
    }
    let before = inner.entries.len();
    inner.entries.retain(|e| e["id"] != json!(id));
    if inner.entries.len() == before {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("CallbackEntry with id {id} not found"),
            Value::Null,
        );
    }
    StatusCode::NO_CONTENT.into_response()
}
