//! A fast loopback notification receiver for the benchmarks: answers every
//! request with the current status and records when each `webhook-id`
//! arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

#[derive(Default)]
struct State {
    status: AtomicU16,
    count: AtomicUsize,
    arrivals: Mutex<HashMap<String, Instant>>,
}

/// The receiver.
#[derive(Clone)]
pub struct BenchReceiver {
    /// Its address.
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl BenchReceiver {
    /// Starts answering `status` to everything.
    pub async fn start(status: u16) -> Self {
        let state = Arc::new(State::default());
        state.status.store(status, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tcp.set_nodelay(true).unwrap();
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let state = state.clone();
                            async move {
                                let id = req
                                    .headers()
                                    .get("webhook-id")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                let _ = req.into_body().collect().await;
                                let status = state.status.load(Ordering::SeqCst);
                                if status == 200 {
                                    if let Some(id) = id {
                                        state
                                            .arrivals
                                            .lock()
                                            .unwrap()
                                            .entry(id)
                                            .or_insert_with(Instant::now);
                                    }
                                    state.count.fetch_add(1, Ordering::SeqCst);
                                }
                                let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                                *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    /// The callback URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Requests answered 200 so far.
    pub fn delivered(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    /// When `webhook_id` first arrived (answered 200).
    pub fn arrival(&self, webhook_id: &str) -> Option<Instant> {
        self.state.arrivals.lock().unwrap().get(webhook_id).copied()
    }
}
