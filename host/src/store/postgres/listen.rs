//! The listening connection: one dedicated connection (not from the pool)
//! that `LISTEN`s on the store's notification channels and forwards every
//! notification, as a [`Notification`], on a broadcast anyone can subscribe
//! to.
//!
//! PostgreSQL drops notifications sent while a listener is disconnected.
//! So when the connection is lost (a database restart, the backend
//! terminated) the listener reconnects with a capped, jittered backoff,
//! listens again and then sends [`Notification::Resync`]: subscribers
//! re-read whatever they derived from the database, since anything may
//! have changed meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt as _};
use rand::Rng as _;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use super::connection::Target;

/// Channels listened on.
pub(super) const CHANNELS: [&str; 3] = [
    "plugboard_outbox",
    "plugboard_instances",
    "plugboard_poll_run",
];

/// Notifications a slow subscriber may fall behind by (it then sees a
/// lagged receive and should re-read everything, as on a resync).
const CAPACITY: usize = 4096;

/// The first wait before reconnecting; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the listening connection forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// A notification from the database.
    Message {
        /// The channel it was sent on.
        channel: String,
        /// Its payload (possibly empty).
        payload: String,
    },
    /// The connection was lost and is back: notifications sent meanwhile
    /// are gone, so re-read everything derived from the database.
    Resync,
}

/// The running listener: its broadcast and whether it is connected. The
/// task ends when the last handle is dropped.
pub(super) struct Listener {
    sender: broadcast::Sender<Notification>,
    connected: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Starts listening through `target` on the current runtime.
    pub(super) fn start(target: Target, label: String) -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        let connected = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(target, label, sender.clone(), connected.clone()));
        Self {
            sender,
            connected,
            task,
        }
    }

    /// A receiver of every notification from now on.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.sender.subscribe()
    }

    /// Whether the listening connection is up right now.
    pub(super) fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects, listens and forwards until the connection ends; then waits
/// and does it again, for ever. `label` names the database (without its
/// password) in logs.
async fn run(
    target: Target,
    label: String,
    sender: broadcast::Sender<Notification>,
    connected: Arc<AtomicBool>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut first = true;
    loop {
        match listen_once(&target, &sender, &connected, first).await {
            Ok(()) => {
                tracing::warn!(database = %label, "the listening connection to PostgreSQL ended; reconnecting");
                backoff = FIRST_BACKOFF;
                first = false;
            }
            Err(e) => {
                tracing::warn!(database = %label, error = %e, retry_in_ms = backoff.as_millis() as u64, "the listening connection to PostgreSQL failed; reconnecting");
                first = false;
            }
        }
        connected.store(false, Ordering::Relaxed);
        let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: connect, `LISTEN`, announce a resync unless this
/// is the first connection, then forward notifications until it ends.
async fn listen_once(
    target: &Target,
    sender: &broadcast::Sender<Notification>,
    connected: &AtomicBool,
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut messages) = target.connect_streaming().await?;
    let listen: String = CHANNELS.iter().map(|c| format!("LISTEN {c};")).collect();
    // The batch needs the connection driven, which is what `messages` does.
    {
        let listening = client.batch_execute(&listen);
        tokio::pin!(listening);
        loop {
            tokio::select! {
                done = &mut listening => { done?; break; }
                message = messages.next() => match message {
                    Some(Ok(m)) => forward(sender, m),
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                },
            }
        }
    }
    connected.store(true, Ordering::Relaxed);
    if !first {
        let _ = sender.send(Notification::Resync);
    }
    while let Some(message) = messages.next().await {
        forward(sender, message?);
    }
    drop(client);
    Ok(())
}

/// Forwards a notification; other asynchronous messages (notices) are
/// logged.
fn forward(sender: &broadcast::Sender<Notification>, message: AsyncMessage) {
    match message {
        AsyncMessage::Notification(n) => {
            let _ = sender.send(Notification::Message {
                channel: n.channel().to_owned(),
                payload: n.payload().to_owned(),
            });
        }
        AsyncMessage::Notice(notice) => {
            tracing::debug!(notice = %notice, "PostgreSQL notice on the listening connection");
        }
        _ => {}
    }
}

/// The asynchronous messages of a dedicated connection, driving it.
pub(super) type Messages = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>,
>;

/// The messages of a connection as a stream (driving the connection).
pub(super) fn messages<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
) -> impl futures_util::Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    stream::poll_fn(move |cx| connection.poll_message(cx))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::broadcast::Receiver;

    use super::super::super::conformance::fresh_database;
    use super::super::super::test_support::new_instance;
    use super::super::super::{InstancePatch, Store, StoreConfig};
    use super::super::connection::Target;
    use super::Notification;

    async fn open(url: &str) -> Store {
        Store::open(&StoreConfig::Postgres {
            url: url.to_string(),
        })
        .await
        .unwrap()
    }

    /// The next notification, waiting at most 10 s.
    async fn next(rx: &mut Receiver<Notification>) -> Notification {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a notification within 10 s")
            .expect("the broadcast is open")
    }

    /// Waits until the store's listening connection is up.
    async fn until_listening(store: &Store) {
        for _ in 0..200 {
            if store.listening() == Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the listening connection did not come up");
    }

    /// The next notification on `channel`, skipping others.
    async fn next_on(rx: &mut Receiver<Notification>, wanted: &str) -> String {
        loop {
            if let Notification::Message { channel, payload } = next(rx).await {
                if channel == wanted {
                    return payload;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instance_writes_on_one_store_are_heard_by_another() {
        let url = fresh_database().await;
        let (a, b) = (open(&url).await, open(&url).await);
        until_listening(&b).await;
        let mut rx = b.notifications();
        let created = a.create_instance(new_instance("x")).await.unwrap();
        let id = created.id;
        assert_eq!(
            next_on(&mut rx, "plugboard_instances").await,
            format!("{id}:1")
        );
        let patch = InstancePatch {
            events_enabled: Some(false),
            ..Default::default()
        };
        a.update_instance(id, patch).await.unwrap().unwrap();
        assert_eq!(
            next_on(&mut rx, "plugboard_instances").await,
            format!("{id}:2")
        );
        assert!(a.delete_instance(id).await.unwrap());
        assert_eq!(
            next_on(&mut rx, "plugboard_instances").await,
            format!("{id}:deleted")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_terminated_listener_reconnects_resyncs_and_hears_later_notifications() {
        let url = fresh_database().await;
        let (a, b) = (open(&url).await, open(&url).await);
        until_listening(&a).await;
        until_listening(&b).await;
        let mut rx = b.notifications();
        let admin = Target::parse(&url).unwrap().connect().await.unwrap();
        let terminated = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND query LIKE 'LISTEN %'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(terminated.len(), 2, "both stores' listening connections");
        loop {
            if next(&mut rx).await == Notification::Resync {
                break;
            }
        }
        assert_eq!(b.listening(), Some(true));
        let id = a.create_instance(new_instance("late")).await.unwrap().id;
        assert_eq!(
            next_on(&mut rx, "plugboard_instances").await,
            format!("{id}:1")
        );
    }

    #[tokio::test]
    async fn sqlite_has_nothing_to_listen_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::Sqlite {
            path: dir.path().join("s.db"),
        })
        .await
        .unwrap();
        assert_eq!(store.listening(), None);
        let mut rx = store.notifications();
        let waited = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
        assert!(waited.is_err(), "nothing is ever received: {waited:?}");
    }
}
