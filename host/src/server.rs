//! Starting and stopping the host: store, runtime, plugin folder watcher and
//! HTTP server, wired together.
//!
//! [`Server::start`] takes an optional pre-bound listener so tests can bind
//! port 0 and learn the address.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, auth::Credentials, ApiState};
use crate::config::Settings;
use crate::delivery::Delivery;
use crate::ingress::{self, IngressState, InstanceCache};
use crate::outbound::OutboundClient;
use crate::poller::Poller;
use crate::registry::{Registry, WatchHandle};
use crate::runtime::Runtime;
use crate::store::{Store, StoreOptions};

/// A running host.
pub struct Server {
    addr: SocketAddr,
    registry: Arc<Registry>,
    credentials: Arc<Credentials>,
    store: Store,
    delivery: Delivery,
    poller: Poller,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _watch: WatchHandle,
}

impl Server {
    /// Opens everything and starts serving. Fails with a message naming the
    /// part that could not start.
    pub async fn start(settings: Settings, listener: Option<TcpListener>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
        let (credentials, generated) =
            Credentials::resolve(settings.credentials.as_ref(), &settings.data_dir)?;
        if let Some(api::auth::Generated(c)) = generated {
            // Printed once, to the terminal, never to the log.
            eprintln!(
                "plugboard: generated management credentials (kept in {}):\n  Authorization: {}",
                settings.data_dir.join("credentials.json").display(),
                c.header_value()
            );
        }
        let outbound = OutboundClient::new(&settings.outbound).context("outbound HTTP client")?;
        let store_path = settings.data_dir.join("plugboard.db");
        let store = Store::open(&store_path, StoreOptions::default())
            .with_context(|| format!("opening the store {}", store_path.display()))?;
        let runtime = Runtime::new(settings.runtime.clone()).context("plugin runtime")?;
        let delivery = Delivery::start(store.clone(), outbound.clone(), settings.delivery.clone());
        let instances = InstanceCache::new(outbound.clone());
        let registry = Registry::new(runtime, settings.plugins_dir.clone());
        let watch_handle = registry.watch().await?;
        let poller = Poller::start(
            store.clone(),
            registry.clone(),
            outbound,
            delivery.clone(),
            settings.poller.clone(),
        );

        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("listening on {} (PLUGBOARD_LISTEN)", settings.listen))?,
        };
        let addr = listener.local_addr()?;
        let credentials = Arc::new(credentials);
        let app = api::router(ApiState {
            registry: registry.clone(),
            credentials: credentials.clone(),
            store: store.clone(),
            instances: instances.clone(),
            delivery: delivery.clone(),
            key_grace: settings.delivery.key_grace,
            poller: poller.clone(),
        })
        .merge(ingress::router(IngressState {
            registry: registry.clone(),
            store: store.clone(),
            instances,
            config: Arc::new(settings.ingress.clone()),
            delivery: delivery.clone(),
        }));
        let app = crate::console::mount(app, credentials.clone());
        let (shutdown, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::info!(%addr, plugins = %settings.plugins_dir.display(), data = %settings.data_dir.display(), "plugboard listening");
        Ok(Self {
            addr,
            registry,
            credentials,
            store,
            delivery,
            poller,
            shutdown,
            task,
            _watch: watch_handle,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plugin registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The durable store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The poller of polling instances.
    pub fn poller(&self) -> &Poller {
        &self.poller
    }

    /// The `Authorization` header value management calls must carry.
    pub fn authorization(&self) -> String {
        self.credentials.header_value()
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("server task")??;
        self.poller.stop();
        self.delivery.stop();
        Ok(())
    }

    /// Serves until the process is asked to stop (SIGINT or SIGTERM).
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
