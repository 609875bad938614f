//! The HTTP listener: the one place connections are accepted, bounded and
//! timed out, for the main port and the metrics port alike.
//!
//! What it guarantees (SPEC-independent, a sidecar's own protection):
//! - **A bound on connections.** At most [`HttpLimits::max_connections`]
//!   are served at once; one past that is answered at once with `503` and
//!   `Retry-After: 1` and closed, so a flood of idle sockets cannot take every
//!   file descriptor from the store, the plugin folder and `/healthz`.
//! - **Header deadline.** A connection must send a whole request head within
//!   [`HttpLimits::header_read_timeout`] of being accepted or of its previous
//!   response (HTTP/1.1 keep-alive), else it is closed. That also bounds how
//!   long an idle keep-alive connection is kept.
//! - **Graceful stop.** When asked to stop, nothing more is accepted, idle
//!   keep-alive connections are closed, and requests in flight may finish;
//!   the caller bounds how long it waits.
//!
//! Bodies are read under their own deadline by the routes that read them
//! (see [`crate::ingress`] and the management API's extractors).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

/// Limits on inbound connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head (also the
    /// longest an idle keep-alive connection is kept).
    pub header_read_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The answer to a connection past the limit: complete, tiny, and closing.
const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 84\r\n\r\n\
{\"code\":\"too_many_connections\",\"message\":\"too many open connections; retry shortly\"}";

/// Serves `router` on `listener` under `limits` until `stop` turns true;
/// then stops accepting, closes idle connections and waits for the
/// requests in flight (the caller bounds that wait).
pub fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before it was
                    // accepted: neither ends the listener.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tokio::spawn(refuse(stream));
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn({
                let router = router.clone();
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    async move {
                        let response = router.oneshot(request.map(axum::body::Body::new)).await;
                        Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
                    }
                }
            });
            let stream = OpeningDeadline::new(stream, limits.header_read_timeout);
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(slot);
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    })
}

/// How many bytes a connection must send before [`OpeningDeadline`] lets
/// go: enough for the server to tell HTTP/1.1 from an HTTP/2 preface.
const OPENING_BYTES: usize = 24;

/// A connection whose first [`OPENING_BYTES`] must arrive before a deadline.
/// hyper's own header timer starts only once it knows the protocol, which it
/// learns from those bytes; a client that connects and sends nothing (or a
/// few bytes) would otherwise be kept for ever.
struct OpeningDeadline {
    stream: TcpStream,
    read: usize,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl OpeningDeadline {
    fn new(stream: TcpStream, timeout: Duration) -> Self {
        Self {
            stream,
            read: 0,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl AsyncRead for OpeningDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.read += buf.filled().len() - before;
                Poll::Ready(result)
            }
            Poll::Pending if this.read < OPENING_BYTES => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request within the header read timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for OpeningDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Answers a connection past the limit with `503` and closes it.
async fn refuse(mut stream: TcpStream) {
    crate::telemetry::metrics::connection_refused();
    let write = async {
        stream.write_all(OVER_LIMIT).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Raises the soft limit on open files to the hard limit, so the connection
/// bound rather than the process's default of 1,024 descriptors decides how
/// many clients are served. Returns the soft limit in force afterwards.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(hard)) = (limit.current, limit.maximum) {
        if current < hard {
            limit.current = Some(hard);
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::warn!(error = %e, "could not raise the open-file limit");
                return Some(current);
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The connection bound that fits the open-file limit: `wanted`, or fewer
/// when the process may not open that many descriptors (a reserve is kept
/// for the store, the plugin folder and outbound requests).
pub fn fit_connections(wanted: usize, open_file_limit: Option<u64>) -> usize {
    const RESERVE: u64 = 256;
    match open_file_limit {
        Some(limit) => wanted.min(limit.saturating_sub(RESERVE).max(16) as usize),
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(OVER_LIMIT).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "too_many_connections");
    }

    #[test]
    fn connections_fit_the_open_file_limit() {
        assert_eq!(fit_connections(10_000, Some(1_048_576)), 10_000);
        assert_eq!(fit_connections(10_000, Some(1_024)), 768);
        assert_eq!(fit_connections(10_000, Some(100)), 16);
        assert_eq!(fit_connections(10_000, None), 10_000);
    }

    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        let after = raise_open_file_limit().unwrap();
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert_eq!(Some(after), hard.or(Some(after)));
    }
}
