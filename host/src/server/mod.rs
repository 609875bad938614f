//! Starting and stopping the host: listeners, store, runtime, plugin folder
//! watcher, delivery and HTTP server, wired together.
//!
//! The listeners are bound first, so `/healthz` and `/readyz` answer while
//! the rest starts (other routes answer 503 until then). [`Server::start`]
//! takes an optional pre-bound listener so tests can bind port 0 and learn
//! the address. [`Server::shutdown`] stops accepting, lets in-flight
//! requests and deliveries finish until the shutdown deadline, and leaves
//! everything unfinished due for the next start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, auth::Credentials, health, ApiState};
use crate::cluster::{Cluster, MAINTENANCE};
use crate::config::Settings;
use crate::delivery::Delivery;
use crate::ingress::{self, IngressState};
use crate::instance::cache::InstanceCache;
use crate::instance::vendor::VendorLink;
use crate::instance::InstanceService;
use crate::outbound::OutboundClient;
use crate::poller::Poller;
use crate::registry::{Registry, WatchHandle};
use crate::runtime::Runtime;
use crate::store::Store;
use crate::telemetry::readiness::{self, Readiness};

mod listener;
mod propagation;

pub use listener::raise_open_file_limit;
use listener::{serve, HttpLimits};

/// A running host.
pub struct Server {
    addr: SocketAddr,
    readiness: Readiness,
    registry: Arc<Registry>,
    credentials: Arc<Credentials>,
    store: Store,
    delivery: Delivery,
    poller: Poller,
    cluster: Cluster,
    propagation: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    shutdown_timeout: Duration,
    http: Vec<JoinHandle<std::io::Result<()>>>,
    _watch: WatchHandle,
}

/// The HTTP side, serving before the rest of the host is up.
struct Listening {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    app: Arc<OnceLock<Router>>,
    shutdown: watch::Sender<bool>,
    http: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Binds `addr`, naming the setting if it cannot.
async fn bind(addr: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} ({})", crate::config::named(setting)))
}

/// The connection limits of `settings`, fitted to the open-file limit
/// (raised first to the hard limit).
fn http_limits(settings: &Settings) -> HttpLimits {
    let open_files = listener::raise_open_file_limit();
    let wanted = settings.http.max_connections;
    let max_connections = listener::fit_connections(wanted, open_files);
    if max_connections < wanted {
        tracing::warn!(
            wanted,
            max_connections,
            open_files,
            "max_connections lowered to fit the open-file limit"
        );
    }
    HttpLimits {
        max_connections,
        header_read_timeout: settings.http.header_read_timeout,
    }
}

impl Listening {
    /// Binds the listeners and starts serving health, readiness and metrics.
    async fn start(
        settings: &Settings,
        listener: Option<TcpListener>,
        readiness: &Readiness,
    ) -> anyhow::Result<Self> {
        let listener = match listener {
            Some(l) => l,
            None => bind(settings.listen, "listen").await?,
        };
        let metrics_listener = match settings.metrics_listen {
            Some(addr) => Some(bind(addr, "metrics_listen").await?),
            None => None,
        };
        let addr = listener.local_addr()?;
        let app = Arc::new(OnceLock::new());
        let (shutdown, stop) = watch::channel(false);
        let front = health::front(readiness.clone(), metrics_listener.is_none(), app.clone());
        let limits = http_limits(settings);
        let mut http = vec![serve(listener, front, limits, stop.clone())];
        let mut metrics_addr = None;
        if let Some(l) = metrics_listener {
            metrics_addr = Some(l.local_addr()?);
            http.push(serve(
                l,
                health::router(readiness.clone(), true),
                limits,
                stop,
            ));
        }
        Ok(Self {
            addr,
            metrics_addr,
            app,
            shutdown,
            http,
        })
    }
}

impl Server {
    /// Binds the listeners, then opens everything and installs the full set
    /// of routes. Fails with a message naming the part that could not start.
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
        crate::telemetry::metrics::set_replica(&settings.cluster.replica_id);
        let readiness = Readiness::new();
        let listening = Listening::start(&settings, listener, &readiness).await?;
        Self::open(settings, Arc::new(credentials), readiness, listening).await
    }

    /// Everything after the listeners; on failure the listeners stop again.
    async fn open(
        settings: Settings,
        credentials: Arc<Credentials>,
        readiness: Readiness,
        listening: Listening,
    ) -> anyhow::Result<Self> {
        let stop_listening = listening.shutdown.clone();
        let failed = |e: anyhow::Error| {
            let _ = stop_listening.send(true);
            e
        };
        let outbound = settings
            .outbound
            .clone()
            .keeping_idle(settings.delivery.per_host);
        let outbound = OutboundClient::new(&outbound)
            .context("outbound HTTP client")
            .map_err(failed)?;
        let store = Store::open(&settings.store)
            .await
            .with_context(|| format!("opening the store ({})", settings.store.describe()))
            .map_err(failed)?;
        let cluster = Cluster::start(settings.cluster.clone(), &store);
        tracing::info!(replica = cluster.replica_id(), "replica started");
        readiness.store_opened(StoreProbe {
            store: store.clone(),
            cluster: cluster.clone(),
        });
        let runtime = Runtime::new(settings.runtime.clone())
            .context("plugin runtime")
            .map_err(failed)?;
        let registry = Registry::new(runtime, settings.plugins_dir.clone());
        let watch_handle = registry.watch().await.map_err(failed)?;
        readiness.plugins_scanned(registry.clone());
        // Every instance write goes through the service, which announces it
        // to the caches, the poller and delivery. A database notification
        // from another process is fed in with `InstanceService::publish` (see
        // `propagation`).
        let elements = {
            let registry = registry.clone();
            Arc::new(move |key: &str| registry.get(key).map(|p| p.plugin.description().clone()))
        };
        // Elements that implement subscription register instances' inbound
        // URLs (built from the public URL) at their vendors.
        let plugins = {
            let registry = registry.clone();
            Arc::new(move |key: &str| registry.get(key).map(|p| p.plugin.clone()))
        };
        let instances = InstanceService::new(
            store.clone(),
            elements,
            outbound.policy().clone(),
            settings.delivery.key_grace,
        )
        .with_vendors(
            settings.public_url.clone(),
            VendorLink::new(plugins, outbound.clone()),
        );
        let delivery = Delivery::start(
            store.clone(),
            instances.clone(),
            outbound.clone(),
            cluster.clone(),
            settings.delivery.clone(),
        );
        let prepared = InstanceCache::new(
            instances.clone(),
            outbound.clone(),
            crate::instance::service::TIME_TO_LIVE,
        );
        let poller = Poller::start(
            store.clone(),
            instances.clone(),
            registry.clone(),
            outbound,
            delivery.clone(),
            cluster.clone(),
            settings.poller.clone(),
        );
        // Polls other replicas hand over ("run now" on a replica not holding
        // the instance's partition) arrive as database notifications.
        poller.follow_run_requests(store.notifications());

        let propagation = propagation::start(&store, instances.clone(), delivery.clone());

        let ingress = IngressState {
            registry: registry.clone(),
            store: store.clone(),
            instances: prepared,
            config: Arc::new(settings.ingress.clone()),
            delivery: delivery.clone(),
            log: ingress::InboundLog::start(store.clone(), settings.ingress.log),
        };
        let app = api::router(ApiState {
            registry: registry.clone(),
            credentials: credentials.clone(),
            store: store.clone(),
            instances,
            delivery: delivery.clone(),
            poller: poller.clone(),
            cluster: cluster.clone(),
        })
        .merge(ingress::management_router(
            ingress.clone(),
            credentials.clone(),
        ))
        .merge(ingress::router(ingress));
        let app = api::with_fallbacks(crate::console::mount(
            app,
            credentials.clone(),
            store.clone(),
        ));
        let _ = listening.app.set(app);
        // Ready only once the routes are in place: until now every request but
        // health and metrics is answered "starting".
        readiness.listening();
        let addr = listening.addr;
        tracing::info!(%addr, metrics = ?listening.metrics_addr, plugins = %settings.plugins_dir.display(), data = %settings.data_dir.display(), "plugboard listening");
        Ok(Self {
            addr,
            readiness,
            registry,
            credentials,
            store,
            delivery,
            poller,
            cluster,
            propagation,
            shutdown: listening.shutdown,
            shutdown_timeout: settings.shutdown_timeout,
            http: listening.http,
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

    /// Stops gracefully: not ready any more, no new connections, in-flight
    /// requests and deliveries finish until the shutdown deadline (what is
    /// still running then is cut off, and stays due for the next start).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        self.readiness.stopping();
        let _ = self.shutdown.send(true);
        for mut task in self.http {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(served) => served.context("server task")??,
                Err(_) => {
                    tracing::warn!("requests still running at the shutdown deadline were cut off");
                    task.abort();
                }
            }
        }
        self.propagation.abort();
        self.poller.stop();
        self.cluster.stop().await;
        self.delivery.stop(deadline).await;
        tracing::info!("stopped");
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

/// The store as readiness sees it (telemetry knows it only by this
/// probe), with the cluster deciding which replica reports the outbox.
struct StoreProbe {
    store: Store,
    cluster: Cluster,
}

impl readiness::StoreProbe for StoreProbe {
    fn reachable(&self) -> readiness::CheckFuture<'_> {
        Box::pin(async move {
            if let Some(why) = self.store.write_problem() {
                return Err(format!("cannot write: {why}"));
            }
            self.store
                .check()
                .await
                .map_err(|e| format!("the store's database does not answer: {e}"))
        })
    }

    fn outbox_depth(&self) -> readiness::DepthFuture<'_> {
        Box::pin(async move {
            if !self.cluster.holds_singleton(MAINTENANCE) {
                return Ok(None);
            }
            let depth = self.store.outbox_depth().await.map_err(|e| e.to_string())?;
            Ok(Some((depth.pending, depth.dead)))
        })
    }

    fn listening(&self) -> Option<bool> {
        self.store.listening()
    }
}

/// The plugin registry as readiness sees it.
impl readiness::PluginsProbe for Arc<Registry> {
    fn loaded(&self) -> usize {
        self.snapshot().plugins().count()
    }

    fn folder(&self) -> PathBuf {
        self.dir().to_path_buf()
    }
}
