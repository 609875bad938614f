//! `plugboard plugins run`: runs an element plugin offline, without a
//! server, on a sample request file ([`super::http_file`]), an instance
//! configuration (a JSON object) and recorded answers to its `https-get`
//! calls, and prints what the host would make of the plugin's answer as
//! JSON; with `--poll RESOURCE` it reads one poll window instead
//! ([`super::poll`]). With `--expect FILE` the printed result must equal
//! that file's JSON, or the command fails listing the differences — a
//! plugin's test in its author's CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};

use super::http_file;
use crate::runtime::{
    CallError, CallLabel, EventType, FetchFixtures, FetchScope, NormalizedEvent, WebhookOutcome,
};

/// Most differences listed when a result does not match its expectation.
const MAX_DIFFERENCES: usize = 20;

/// What `plugboard plugins run` is given.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The component file (`.wasm`).
    pub file: PathBuf,
    /// The inbound request: `METHOD /path[?query]`, headers (`name:
    /// value`), an empty line, the body (as HTTP/1.1 on the wire).
    #[arg(long, required_unless_present = "poll", conflicts_with = "poll")]
    pub request: Option<PathBuf>,
    /// Instead of a webhook, read one poll window of this resource of the
    /// configuration's `event.poller.configuration`, each page's request
    /// answered by a `--fetch` fixture.
    #[arg(long, value_name = "RESOURCE")]
    pub poll: Option<String>,
    /// With `--poll`: the checkpoint the window starts from (less the
    /// resource's `pollDelay`), RFC 3339. Default: an hour before `--until`.
    #[arg(long, requires = "poll")]
    pub since: Option<String>,
    /// With `--poll`: the end of the window, RFC 3339. Default: now.
    #[arg(long, requires = "poll")]
    pub until: Option<String>,
    /// The instance configuration: a JSON object (key → value), as in
    /// `POST /instances`. Default: empty.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Answers `https-get` of URL (exactly) with the response in FILE
    /// (status line `200`, headers, an empty line, the body). Repeatable;
    /// a URL without one fails as an unreachable host would.
    #[arg(long, value_name = "URL=FILE")]
    pub fetch: Vec<String>,
    /// The expected result (JSON): exit with status 1, listing the
    /// differences, when the result differs.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
}

/// Runs the plugin's `webhook` on the request (or reads a poll window) and
/// prints the result; fails if the plugin cannot be loaded, an input is
/// malformed, or the result differs from the expectation.
pub fn run_plugin(args: &RunArgs) -> anyhow::Result<()> {
    let configuration = match &args.config {
        Some(path) => configuration(path)?,
        None => Map::new(),
    };
    let answers = fixtures(&args.fetch)?;
    let expected = match &args.expect {
        Some(path) => Some(
            serde_json::from_slice::<Value>(&read(path)?)
                .with_context(|| format!("expectation {} is not JSON", path.display()))?,
        ),
        None => None,
    };
    let out = match (&args.poll, &args.request) {
        (Some(resource), _) => {
            let run = super::poll::PollRun {
                resource,
                configuration: &configuration,
                since: args.since.as_deref(),
                until: args.until.as_deref(),
                answers,
            };
            super::with_plugin(&args.file, |plugin| async move { run.run(&plugin).await })??
        }
        (None, Some(request)) => webhook(args, request, &configuration, answers)?,
        (None, None) => bail!("give --request FILE (a webhook) or --poll RESOURCE"),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let (Some(expected), Some(path)) = (expected, &args.expect) {
        let mut found = Vec::new();
        differences("", &expected, &out, &mut found);
        if !found.is_empty() {
            let more = found.len().saturating_sub(MAX_DIFFERENCES);
            found.truncate(MAX_DIFFERENCES);
            if more > 0 {
                found.push(format!("… and {more} more"));
            }
            bail!(
                "the result differs from {}:\n  {}",
                path.display(),
                found.join("\n  ")
            );
        }
    }
    Ok(())
}

/// The plugin's `webhook` on the request file, as JSON.
fn webhook(
    args: &RunArgs,
    request: &Path,
    configuration: &Map<String, Value>,
    answers: BTreeMap<String, crate::runtime::HttpResponse>,
) -> anyhow::Result<Value> {
    let request = http_file::parse_request(&read(request)?)
        .with_context(|| format!("request file {}", request.display()))?;
    let config = crate::instance::plugin_config(configuration);
    let fixtures = Arc::new(FetchFixtures::new(answers));
    let (request, config, scope) = (&request, &config, fixtures.clone());
    let result = super::with_plugin(&args.file, |plugin| async move {
        let label = CallLabel {
            element: plugin.description().key.clone(),
            instance: None,
        };
        let fetch = FetchScope {
            fixtures: Some(scope),
            ..FetchScope::default()
        };
        plugin.webhook(label, fetch, config, request).await
    })?;
    let mut out = render(result, &request.body);
    out["fetched"] = json!(fixtures.requested());
    Ok(out)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The configuration file: a JSON object, as in `POST /instances`.
fn configuration(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let value: Value = serde_json::from_slice(&read(path)?)
        .with_context(|| format!("configuration {} is not JSON", path.display()))?;
    let Value::Object(object) = value else {
        bail!(
            "configuration {} must be a JSON object (key → value)",
            path.display()
        );
    };
    Ok(object)
}

/// The `--fetch URL=FILE` answers, read.
fn fixtures(specs: &[String]) -> anyhow::Result<BTreeMap<String, crate::runtime::HttpResponse>> {
    let mut answers = BTreeMap::new();
    for spec in specs {
        let Some((url, file)) = spec.rsplit_once('=') else {
            bail!("--fetch {spec:?}: expected URL=FILE");
        };
        let response = http_file::parse_response(&read(Path::new(file))?)
            .with_context(|| format!("--fetch {url}: response file {file}"))?;
        answers.insert(url.to_owned(), response);
    }
    Ok(answers)
}

/// JSON text as its value, anything else as a string.
pub(super) fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn event(event: &NormalizedEvent) -> Value {
    let event_type = match event.event_type {
        EventType::Created => "created",
        EventType::Updated => "updated",
        EventType::Deleted => "deleted",
        EventType::Unknown => "unknown",
    };
    json!({
        "eventType": event_type,
        "objectType": event.object_type,
        "objectId": event.object_id,
        "date": event.date,
        "raw": json_or_text(&event.raw),
    })
}

/// The plugin's answer as the host would act on it: events to store (with
/// the raw payload notifications carry: the plugin's, else the body), a
/// response to send, or the error and the HTTP status it becomes.
fn render(result: Result<WebhookOutcome, CallError>, body: &[u8]) -> Value {
    match result {
        Ok(WebhookOutcome::Accepted(accepted)) => {
            let raw = accepted
                .raw
                .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
            json!({
                "outcome": "accepted",
                "messageId": accepted.message_id,
                "events": accepted.events.iter().map(event).collect::<Vec<_>>(),
                "raw": json_or_text(&raw),
            })
        }
        Ok(WebhookOutcome::Respond(response)) => {
            let headers: Map<String, Value> = response
                .headers
                .into_iter()
                .map(|h| (h.name, Value::String(h.value)))
                .collect();
            json!({
                "outcome": "respond",
                "status": response.status,
                "headers": headers,
                "body": String::from_utf8_lossy(&response.body),
            })
        }
        Err(error) => {
            let kind = error.kind();
            // The answer the vendor would get, from the one place that
            // chooses it.
            let answer = crate::api::ApiError::from(error);
            json!({
                "outcome": "error",
                "kind": kind,
                "status": answer.status.as_u16(),
                "code": answer.code,
                "message": answer.message,
            })
        }
    }
}

/// Lists where `actual` differs from `expected`, by JSON pointer.
fn differences(at: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, value) in want {
                let path = format!("{at}/{key}");
                match got.get(key) {
                    Some(found) => differences(&path, value, found, out),
                    None => out.push(format!("{path}: expected {value}, missing")),
                }
            }
            for key in got.keys().filter(|key| !want.contains_key(*key)) {
                out.push(format!("{at}/{key}: not expected, got {}", got[key]));
            }
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => {
            for (n, (value, found)) in want.iter().zip(got).enumerate() {
                differences(&format!("{at}/{n}"), value, found, out);
            }
        }
        _ if expected != actual => {
            let path = if at.is_empty() { "/" } else { at };
            out.push(format!("{path}: expected {expected}, got {actual}"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_named_by_pointer() {
        let want = json!({"outcome": "accepted", "events": [{"objectId": "1"}], "raw": {"a": 1}});
        let got = json!({"outcome": "accepted", "events": [{"objectId": "2"}], "extra": true, "raw": {"a": 1}});
        let mut found = Vec::new();
        differences("", &want, &got, &mut found);
        assert_eq!(
            found,
            [
                "/events/0/objectId: expected \"1\", got \"2\"",
                "/extra: not expected, got true"
            ]
        );
        let mut none = Vec::new();
        differences("", &want, &want, &mut none);
        assert!(none.is_empty());
        let mut lengths = Vec::new();
        differences("", &json!([1]), &json!([1, 2]), &mut lengths);
        assert_eq!(lengths, ["/: expected [1], got [1,2]"]);
    }
}
