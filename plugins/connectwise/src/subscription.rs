//! Registering an instance's inbound URL with ConnectWise's callbacks API.
//!
//! `subscribe` POSTs one callback entry per configured record type
//! (`connectwise.callback.types`, by default `ticket,company,contact`) to
//! `{base}/system/callbacks`:
//! `{"url", "objectId": 1, "type", "level", "description"}`, with the same
//! Basic authentication and `clientId` header as polling, and remembers the
//! `id` of each entry ConnectWise answers with, as
//! `{"callbacks": [{"type": "ticket", "id": 41}, …]}`. If ConnectWise
//! refuses one, the entries already made are deleted again and the error
//! names the type, ConnectWise's status and its message: nothing is left
//! registered. `unsubscribe` DELETEs `{base}/system/callbacks/{id}` for
//! each remembered entry; one ConnectWise no longer has (404) counts as
//! removed.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::bindings::plugboard::element::types::{ElementError, HttpRequest, HttpResponse};
use crate::config::{Settings, CALLBACK_LEVEL, CALLBACK_TYPES, SERVER_URL};
use crate::host::Host;
use crate::rest;

/// The record types registered when the configuration names none.
pub const DEFAULT_TYPES: [&str; 3] = ["ticket", "company", "contact"];
/// The callback level when the configuration names none: every record of
/// the type in the company (`objectId` 1 is the company itself).
pub const DEFAULT_LEVEL: &str = "owner";
/// The longest description ConnectWise accepts.
const MAX_DESCRIPTION_CHARS: usize = 100;

/// One callback entry registered at ConnectWise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// Its record type, e.g. `ticket`.
    #[serde(rename = "type")]
    pub kind: String,
    /// ConnectWise's id of the entry.
    pub id: i64,
}

/// What the host remembers for an instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    /// Every entry registered for the instance.
    pub callbacks: Vec<Registered>,
}

/// The record types to register, from `connectwise.callback.types`
/// (comma-separated, blanks ignored) or [`DEFAULT_TYPES`].
fn record_types(settings: Settings<'_>) -> Result<Vec<String>, ElementError> {
    let Some(list) = settings.get(CALLBACK_TYPES) else {
        return Ok(DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect());
    };
    let types: Vec<String> = list
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() {
        return Err(ElementError::BadRequest(format!(
            "configuration `{CALLBACK_TYPES}` names no record type (e.g. `ticket,company`)"
        )));
    }
    Ok(types)
}

/// Registers `callback_url` for every configured record type, after
/// removing what `previous` remembers.
pub fn subscribe(
    host: &impl Host,
    settings: Settings<'_>,
    callback_url: &str,
    previous: Option<&str>,
) -> Result<String, ElementError> {
    let types = record_types(settings)?;
    let level = settings.get(CALLBACK_LEVEL).unwrap_or(DEFAULT_LEVEL);
    if let Some(previous) = previous {
        unsubscribe(host, settings, previous)?;
    }
    let mut made = Remembered::default();
    for kind in types {
        match register(host, settings, callback_url, &kind, level) {
            Ok(id) => made.callbacks.push(Registered { kind, id }),
            Err(refused) => {
                if let Err(left) = remove_all(host, settings, &made) {
                    return Err(ElementError::Internal(format!(
                        "{}; removing the callbacks already registered failed too: {}",
                        message(&refused),
                        message(&left)
                    )));
                }
                return Err(refused);
            }
        }
    }
    serde_json::to_string(&made).map_err(|e| ElementError::Internal(e.to_string()))
}

/// Deletes every callback entry `remembered` names.
pub fn unsubscribe(
    host: &impl Host,
    settings: Settings<'_>,
    remembered: &str,
) -> Result<(), ElementError> {
    let remembered: Remembered = serde_json::from_str(remembered).map_err(|e| {
        ElementError::BadRequest(format!("the remembered subscription is not readable: {e}"))
    })?;
    remove_all(host, settings, &remembered)
}

/// POSTs one callback entry and returns its id.
fn register(
    host: &impl Host,
    settings: Settings<'_>,
    callback_url: &str,
    kind: &str,
    level: &str,
) -> Result<i64, ElementError> {
    let description: String = format!("plugboard: {kind} events to {callback_url}")
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    let entry = json!({
        "url": callback_url,
        "objectId": 1,
        "type": kind,
        "level": level,
        "description": description,
        "inactiveFlag": false,
    });
    let mut headers = rest::auth_headers(host, settings)?;
    headers.push(rest::header("Content-Type", "application/json".to_owned()));
    let response = send(
        host,
        HttpRequest {
            method: "POST".to_owned(),
            url: callbacks_url(settings)?,
            query: String::new(),
            headers,
            body: entry.to_string().into_bytes(),
        },
    )?;
    if !(200..300).contains(&response.status) {
        return Err(refusal(&format!("the {kind} callback"), &response));
    }
    let created: Value = serde_json::from_slice(&response.body).map_err(|e| {
        ElementError::Internal(format!(
            "ConnectWise's answer to the {kind} callback is not JSON: {e}"
        ))
    })?;
    created.get("id").and_then(Value::as_i64).ok_or_else(|| {
        ElementError::Internal(format!(
            "ConnectWise's answer to the {kind} callback carries no numeric `id`"
        ))
    })
}

/// DELETEs every entry of `remembered`, going on past failures; the error
/// names every entry left behind.
fn remove_all(
    host: &impl Host,
    settings: Settings<'_>,
    remembered: &Remembered,
) -> Result<(), ElementError> {
    if remembered.callbacks.is_empty() {
        return Ok(());
    }
    let base = callbacks_url(settings)?;
    let headers = rest::auth_headers(host, settings)?;
    let mut left = Vec::new();
    for entry in &remembered.callbacks {
        let request = HttpRequest {
            method: "DELETE".to_owned(),
            url: format!("{base}/{}", entry.id),
            query: String::new(),
            headers: headers.clone(),
            body: Vec::new(),
        };
        let what = format!("the {} callback {}", entry.kind, entry.id);
        match send(host, request) {
            Ok(response) if (200..300).contains(&response.status) || response.status == 404 => {}
            Ok(response) => left.push(message(&refusal(&what, &response)).to_owned()),
            Err(failed) => left.push(format!("{what}: {}", message(&failed))),
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(ElementError::Internal(format!(
            "callbacks left registered at ConnectWise: {}",
            left.join("; ")
        )))
    }
}

/// `{base}/system/callbacks`.
fn callbacks_url(settings: Settings<'_>) -> Result<String, ElementError> {
    let server = settings.require_any(&[SERVER_URL])?;
    Ok(format!("{}/system/callbacks", rest::api_base(server)))
}

/// Sends `request` through the host; a transport failure is `internal`.
fn send(host: &impl Host, request: HttpRequest) -> Result<HttpResponse, ElementError> {
    host.https_send(&request).map_err(|e| {
        ElementError::Internal(format!(
            "{} {} failed: {e:?}",
            request.method,
            request.url.split('?').next().unwrap_or_default()
        ))
    })
}

/// ConnectWise's refusal of `what`, naming its status, its `code` and
/// `message`, and the first field error: 401 and 403 are `unauthorized`,
/// other statuses `bad-request`.
fn refusal(what: &str, response: &HttpResponse) -> ElementError {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let mut said = String::new();
    if let Some(code) = body.get("code").and_then(Value::as_str) {
        said.push_str(code);
    }
    if let Some(text) = body.get("message").and_then(Value::as_str) {
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(text);
    }
    let first_error = body
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    if let Some(error) = first_error {
        let field = error.get("field").and_then(Value::as_str).unwrap_or("");
        let text = error.get("message").and_then(Value::as_str).unwrap_or("");
        said.push_str(&format!(" ({field}: {text})"));
    }
    if said.is_empty() {
        said = String::from_utf8_lossy(&response.body)
            .chars()
            .take(200)
            .collect();
    }
    let text = format!(
        "ConnectWise refused {what} with status {}: {said}",
        response.status
    );
    match response.status {
        401 | 403 => ElementError::Unauthorized(text),
        _ => ElementError::BadRequest(text),
    }
}

/// The text of an element error.
fn message(error: &ElementError) -> &str {
    match error {
        ElementError::BadRequest(m)
        | ElementError::Unauthorized(m)
        | ElementError::Unsupported(m)
        | ElementError::Internal(m) => m,
    }
}

#[cfg(test)]
#[path = "subscription_tests.rs"]
mod tests;
