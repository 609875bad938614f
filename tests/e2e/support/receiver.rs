//! A client's notification receiver on loopback: records every request
//! (headers and exact body bytes) and answers from a script, so tests can
//! make it fail, stall, throttle or go away.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Request headers.
    pub headers: HeaderMap,
    /// Exact body bytes.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
    /// The sender's end of the connection it came on: one per connection.
    pub peer: SocketAddr,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This status (with `Retry-After` seconds if given).
    Status(u16, Option<u64>),
    /// Wait this long, then 200.
    Stall(Duration),
    /// This status with this body.
    Body(u16, Vec<u8>),
}

#[derive(Default)]
struct Inner {
    got: Vec<Received>,
    /// Answers for requests whose body contains a needle, used first.
    by_body: Vec<(Vec<u8>, VecDeque<Answer>)>,
    script: VecDeque<Answer>,
    default: Option<Answer>,
}

/// The receiver.
#[derive(Clone)]
pub struct Receiver {
    /// Its address.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// Starts a receiver answering 200 unless scripted otherwise.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap()
        });
        Self { addr, inner }
    }

    /// The callback URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers the next requests with these, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    /// Answers the next requests whose body contains `needle` with
    /// `answers`, in order, before any other script.
    pub fn script_for_body(&self, needle: &str, answers: impl IntoIterator<Item = Answer>) {
        self.inner
            .lock()
            .unwrap()
            .by_body
            .push((needle.as_bytes().to_vec(), answers.into_iter().collect()));
    }

    /// Answers every unscripted request with this (default: 200).
    pub fn always(&self, answer: Answer) {
        self.inner.lock().unwrap().default = Some(answer);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().got.clone()
    }

    /// The requests received so far whose header `name` is `value` (e.g.
    /// every delivery of one notification, by `webhook-id`), found without
    /// copying the others.
    pub fn received_with(&self, name: &str, value: &str) -> Vec<Received> {
        self.inner
            .lock()
            .unwrap()
            .got
            .iter()
            .filter(|r| r.header(name) == value)
            .cloned()
            .collect()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut i = inner.lock().unwrap();
        let for_body = i
            .by_body
            .iter_mut()
            .find(|(needle, answers)| {
                !answers.is_empty() && body.windows(needle.len()).any(|w| w == &needle[..])
            })
            .and_then(|(_, answers)| answers.pop_front());
        i.got.push(Received {
            headers,
            body,
            at: Instant::now(),
            peer,
        });
        for_body
            .or_else(|| i.script.pop_front())
            .or_else(|| i.default.clone())
            .unwrap_or(Answer::Status(200, None))
    };
    match answer {
        Answer::Status(code, retry_after) => {
            let mut r = StatusCode::from_u16(code).unwrap().into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            if (300..400).contains(&code) {
                r.headers_mut()
                    .insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
            }
            r
        }
        Answer::Stall(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Answer::Body(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
    }
}
