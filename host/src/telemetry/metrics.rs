//! Prometheus metrics of the whole process, served as text at `/metrics`.
//!
//! One process-wide set of metric families (the host is one deployable;
//! every stage records into the same registry), with small functions for
//! each stage to call: [`webhook`], [`plugin_call`], [`plugin_breaker`],
//! [`plugin_call_refused`], [`plugin_long_call_waited`], [`plugin_instance`], [`delivery_attempt`], [`poll_run`],
//! [`plugin_load`]. Gauges that describe state rather than
//! events (outbox depth, plugins loaded) are set at scrape time by
//! [`render`]'s caller. Label values are bounded: element keys of loaded
//! plugins only (unknown elements count as `unknown`), HTTP statuses, and
//! fixed outcome and error-kind names.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`render`]'s output (OpenMetrics text, which
/// Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ElementLabel {
    element: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ElementStatus {
    element: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ElementCall {
    element: String,
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ElementKind {
    element: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ElementInstance {
    element: String,
    /// `warm` (kept from an earlier call) or `fresh`.
    instance: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    /// The outbox gauges, rendered only by the maintenance lease holder.
    outbox: Registry,
    webhooks_received: Family<ElementLabel, Counter>,
    webhooks_rejected: Family<ElementStatus, Counter>,
    plugin_call_seconds: Histograms<ElementCall>,
    plugin_errors: Family<ElementKind, Counter>,
    plugin_instances: Family<ElementInstance, Counter>,
    breaker_open: Family<ElementLabel, Gauge>,
    breaker_openings: Family<ElementLabel, Counter>,
    calls_refused: Family<ElementLabel, Counter>,
    long_call_waits: Family<ElementLabel, Counter>,
    deliveries: Family<Outcome, Counter>,
    delivery_seconds: Histogram,
    outbox_pending: Gauge,
    outbox_dead: Gauge,
    poll_runs: Family<ElementLabel, Counter>,
    poll_errors: Family<ElementLabel, Counter>,
    plugin_loads: Family<Outcome, Counter>,
    plugins_loaded: Gauge,
    listen_connected: Gauge,
    connections_refused: Counter,
    poll_pages_fenced: Counter,
    inbound_dropped: Family<Reason, Counter>,
    delivery_outcomes_stale: Counter,
    delivery_held_back_by_cap: Counter,
    delivery_held_back_by_rate: Counter,
    delivery_handed_back: Counter,
    partitions_held: Gauge,
}

fn plugin_call_histogram() -> Histogram {
    // 50 µs … ~1.6 s: plugin calls take tens of microseconds to the CPU deadline.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The `replica` label of every sample: the first replica id this process
/// names (before anything is recorded), `unnamed` if none was.
static REPLICA: OnceLock<String> = OnceLock::new();

/// Names this process's replica for the `replica` label of every sample;
/// to be called at start-up, before anything is recorded.
pub fn set_replica(id: &str) {
    let _ = REPLICA.set(id.to_string());
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let replica = REPLICA
        .get()
        .cloned()
        .unwrap_or_else(|| "unnamed".to_string());
    let mut registry = Registry::with_prefix_and_labels(
        "plugboard",
        [(Cow::Borrowed("replica"), Cow::Owned(replica.clone()))].into_iter(),
    );
    let mut outbox = Registry::with_prefix_and_labels(
        "plugboard",
        [(Cow::Borrowed("replica"), Cow::Owned(replica.clone()))].into_iter(),
    );
    let m = Metrics {
        registry: Registry::default(),
        outbox: Registry::default(),
        webhooks_received: Family::default(),
        webhooks_rejected: Family::default(),
        plugin_call_seconds: Family::new_with_constructor(plugin_call_histogram),
        plugin_errors: Family::default(),
        plugin_instances: Family::default(),
        breaker_open: Family::default(),
        breaker_openings: Family::default(),
        calls_refused: Family::default(),
        long_call_waits: Family::default(),
        deliveries: Family::default(),
        // 1 ms … ~33 s: loopback receivers to the longest delivery timeout.
        delivery_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        outbox_pending: Gauge::default(),
        outbox_dead: Gauge::default(),
        poll_runs: Family::default(),
        poll_errors: Family::default(),
        plugin_loads: Family::default(),
        plugins_loaded: Gauge::default(),
        listen_connected: Gauge::default(),
        connections_refused: Counter::default(),
        poll_pages_fenced: Counter::default(),
        inbound_dropped: Family::default(),
        delivery_outcomes_stale: Counter::default(),
        delivery_held_back_by_cap: Counter::default(),
        delivery_held_back_by_rate: Counter::default(),
        delivery_handed_back: Counter::default(),
        partitions_held: Gauge::default(),
    };
    let r = &mut registry;
    r.register(
        "webhooks_received",
        "Webhook requests received, by element",
        m.webhooks_received.clone(),
    );
    r.register(
        "webhooks_rejected",
        "Webhook requests answered with a non-2xx status, by element and status",
        m.webhooks_rejected.clone(),
    );
    r.register_with_unit(
        "plugin_call_duration",
        "Wall time of plugin calls, by element and call",
        Unit::Seconds,
        m.plugin_call_seconds.clone(),
    );
    r.register(
        "plugin_errors",
        "Plugin calls that failed (trap, timeout, memory, unavailable), by element and kind",
        m.plugin_errors.clone(),
    );
    r.register(
        "plugin_instances",
        "Plugin calls by the instance they ran in: fresh (instantiated for the call) or warm (kept from an earlier call of the same element instance, for stateless elements)",
        m.plugin_instances.clone(),
    );
    r.register(
        "plugin_breaker_open",
        "1 while an element's circuit breaker is open or half-open (its calls keep failing), else 0",
        m.breaker_open.clone(),
    );
    r.register(
        "plugin_breaker_openings",
        "Times an element's circuit breaker opened (after repeated failures, or a failed trial call)",
        m.breaker_openings.clone(),
    );
    r.register(
        "plugin_calls_refused",
        "Plugin calls refused without running because the element's circuit breaker was open",
        m.calls_refused.clone(),
    );
    r.register(
        "plugin_long_call_waits",
        "Plugin calls that ran long and waited for a free lane for long calls (long_call_lanes)",
        m.long_call_waits.clone(),
    );
    r.register("deliveries", "Notification delivery attempts by outcome: delivered, failed (retried later) or dead_lettered", m.deliveries.clone());
    r.register_with_unit(
        "delivery_duration",
        "Wall time of notification delivery attempts",
        Unit::Seconds,
        m.delivery_seconds.clone(),
    );
    outbox.register(
        "outbox_pending",
        "Notifications waiting for delivery (reported by the replica holding the maintenance lease)",
        m.outbox_pending.clone(),
    );
    outbox.register(
        "outbox_dead",
        "Dead-lettered notifications (reported by the replica holding the maintenance lease)",
        m.outbox_dead.clone(),
    );
    r.register("poll_runs", "Poll runs, by element", m.poll_runs.clone());
    r.register(
        "poll_errors",
        "Poll runs that failed, by element",
        m.poll_errors.clone(),
    );
    r.register(
        "plugin_loads",
        "Plugin files loaded (outcome loaded) or refused (outcome failed) from the plugin folder",
        m.plugin_loads.clone(),
    );
    r.register(
        "plugins_loaded",
        "Element plugins serving requests",
        m.plugins_loaded.clone(),
    );
    r.register(
        "listen_connected",
        "1 while changes made by other processes on the same database are heard \
         (PostgreSQL: the LISTEN connection is up; always 1 on SQLite), 0 while \
         they are not",
        m.listen_connected.clone(),
    );
    r.register(
        "connections_refused",
        "Inbound connections answered 503 and closed because the connection limit was reached",
        m.connections_refused.clone(),
    );
    r.register(
        "poll_pages_fenced",
        "Poll page writes refused (0 rows written) because this replica no longer held the \
         instance's partition lease",
        m.poll_pages_fenced.clone(),
    );
    r.register(
        "inbound_log_dropped",
        "Inbound log entries (rejected, duplicate, responded requests) not stored, by reason: \
         queue_full, cap (over the log's caps) or store_error",
        m.inbound_dropped.clone(),
    );
    r.register(
        "delivery_outcomes_stale",
        "Delivery attempt outcomes not recorded (0 rows written) because their claim's lease \
         token no longer held the notification",
        m.delivery_outcomes_stale.clone(),
    );
    r.register(
        "delivery_held_back_by_cap",
        "Times a claim left an instance's due notifications unclaimed because as many of its \
         notifications as delivery.max_in_flight_per_instance were already in flight",
        m.delivery_held_back_by_cap.clone(),
    );
    r.register(
        "delivery_held_back_by_rate",
        "Times a claim left an instance's due notifications unclaimed because its \
         event.notification.rate_limit allowed no more yet",
        m.delivery_held_back_by_rate.clone(),
    );
    r.register(
        "delivery_handed_back",
        "Claimed notifications handed back unattempted (due again shortly, no attempt counted) \
         because their destination host had no free delivery slot in time",
        m.delivery_handed_back.clone(),
    );
    r.register(
        "partitions_held",
        "Poll partitions (of 256) this replica holds",
        m.partitions_held.clone(),
    );
    Metrics {
        registry,
        outbox,
        ..m
    }
});

/// A webhook request for `element` (a loaded element's key, or `unknown`)
/// was answered with `status`.
pub fn webhook(element: &str, status: u16) {
    let m = &*METRICS;
    let element = element.to_string();
    m.webhooks_received
        .get_or_create(&ElementLabel {
            element: element.clone(),
        })
        .inc();
    if !(200..300).contains(&status) {
        m.webhooks_rejected
            .get_or_create(&ElementStatus { element, status })
            .inc();
    }
}

/// A plugin call (`webhook`, `prepare_poll`, `map_poll`, `describe`) took
/// `elapsed`; `failure` is the error kind if the plugin itself failed.
pub fn plugin_call(
    element: &str,
    call: &'static str,
    elapsed: Duration,
    failure: Option<&'static str>,
) {
    let m = &*METRICS;
    let element = if element.is_empty() {
        "loading"
    } else {
        element
    };
    m.plugin_call_seconds
        .get_or_create(&ElementCall {
            element: element.to_string(),
            call,
        })
        .observe(elapsed.as_secs_f64());
    if let Some(kind) = failure {
        m.plugin_errors
            .get_or_create(&ElementKind {
                element: element.to_string(),
                kind,
            })
            .inc();
    }
}

/// A call of `element` ran in a `warm` instance kept from an earlier call,
/// or in a fresh one.
pub fn plugin_instance(element: &str, warm: bool) {
    let element = if element.is_empty() {
        "loading"
    } else {
        element
    };
    METRICS
        .plugin_instances
        .get_or_create(&ElementInstance {
            element: element.to_string(),
            instance: if warm { "warm" } else { "fresh" },
        })
        .inc();
}

/// An element's circuit breaker changed state: `open` while open or
/// half-open; `opened` when it just opened (again).
pub fn plugin_breaker(element: &str, open: bool, opened: bool) {
    let m = &*METRICS;
    let label = ElementLabel {
        element: element.to_string(),
    };
    m.breaker_open.get_or_create(&label).set(i64::from(open));
    if opened {
        m.breaker_openings.get_or_create(&label).inc();
    }
}

/// A long call of `element` had to wait for a lane for long calls.
pub fn plugin_long_call_waited(element: &str) {
    METRICS
        .long_call_waits
        .get_or_create(&ElementLabel {
            element: element.to_string(),
        })
        .inc();
}

/// A call of `element` was refused because its circuit breaker was open.
pub fn plugin_call_refused(element: &str) {
    METRICS
        .calls_refused
        .get_or_create(&ElementLabel {
            element: element.to_string(),
        })
        .inc();
}

/// How one delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed; another is scheduled.
    Failed,
    /// The attempt failed and it was the last: the notification is dead-lettered.
    DeadLettered,
}

/// A delivery attempt ended with `outcome` after `elapsed`.
pub fn delivery_attempt(outcome: DeliveryOutcome, elapsed: Duration) {
    let m = &*METRICS;
    let outcome = match outcome {
        DeliveryOutcome::Delivered => "delivered",
        DeliveryOutcome::Failed => "failed",
        DeliveryOutcome::DeadLettered => "dead_lettered",
    };
    m.deliveries.get_or_create(&Outcome { outcome }).inc();
    m.delivery_seconds.observe(elapsed.as_secs_f64());
}

/// One resource of an instance of `element` was polled; `ok` is false if
/// the poll failed (it is retried with backoff).
pub fn poll_run(element: &str, ok: bool) {
    let m = &*METRICS;
    let label = ElementLabel {
        element: element.to_string(),
    };
    m.poll_runs.get_or_create(&label).inc();
    if !ok {
        m.poll_errors.get_or_create(&label).inc();
    }
}

/// `count` inbound log entries were not stored: `queue_full` (the writer
/// was behind), `cap` (over the per-instance or total cap, or the instance
/// gone) or `store_error`.
pub fn inbound_dropped(reason: &'static str, count: u64) {
    METRICS
        .inbound_dropped
        .get_or_create(&Reason { reason })
        .inc_by(count);
}

/// A poll page's write was fenced: its partition lease no longer held.
pub fn poll_page_fenced() {
    METRICS.poll_pages_fenced.inc();
}

/// A claim left due notifications of `capped` instances unclaimed for
/// their in-flight cap, and of `paced` instances for their rate limit.
pub fn delivery_held_back(capped: u32, paced: u32) {
    METRICS.delivery_held_back_by_cap.inc_by(u64::from(capped));
    METRICS.delivery_held_back_by_rate.inc_by(u64::from(paced));
}

/// `count` claimed notifications were handed back unattempted.
pub fn delivery_handed_back(count: u64) {
    METRICS.delivery_handed_back.inc_by(count);
}

/// `count` delivery outcomes found their lease token gone and wrote nothing.
pub fn delivery_outcomes_stale(count: usize) {
    METRICS.delivery_outcomes_stale.inc_by(count as u64);
}

/// This replica now holds `count` poll partitions.
pub fn partitions_held(count: usize) {
    METRICS.partitions_held.set(count as i64);
}

/// An inbound connection was refused: the connection limit was reached.
pub fn connection_refused() {
    METRICS.connections_refused.inc();
}

/// A changed plugin file was loaded (`ok`) or refused.
pub fn plugin_load(ok: bool) {
    let outcome = if ok { "loaded" } else { "failed" };
    METRICS
        .plugin_loads
        .get_or_create(&Outcome { outcome })
        .inc();
}

/// State sampled at scrape time.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Notifications waiting for delivery and dead-lettered ones; `None`
    /// on a replica not holding the maintenance lease (another one
    /// reports them, so a sum over replicas counts them once).
    pub outbox: Option<(u64, u64)>,
    /// Element plugins serving requests.
    pub plugins_loaded: usize,
    /// Whether changes made by other processes are heard (the PostgreSQL
    /// listening connection is up; always on SQLite).
    pub listen_connected: bool,
}

impl Default for Sample {
    fn default() -> Self {
        Self {
            outbox: None,
            plugins_loaded: 0,
            listen_connected: true,
        }
    }
}

/// Every metric in the OpenMetrics text format, with `sample`'s gauges.
pub fn render(sample: Sample) -> String {
    let m = &*METRICS;
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    m.plugins_loaded.set(gauge(sample.plugins_loaded as u64));
    m.listen_connected.set(i64::from(sample.listen_connected));
    let mut out = String::new();
    let mut encode = || -> std::fmt::Result {
        text::encode_registry(&mut out, &m.registry)?;
        if let Some((pending, dead)) = sample.outbox {
            m.outbox_pending.set(gauge(pending));
            m.outbox_dead.set(gauge(dead));
            text::encode_registry(&mut out, &m.outbox)?;
        }
        text::encode_eof(&mut out)
    };
    encode().expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_depth_is_left_to_the_maintenance_replica() {
        let text = render(Sample {
            outbox: None,
            plugins_loaded: 1,
            listen_connected: true,
        });
        assert!(!text.contains("plugboard_outbox_pending"), "{text}");
        assert!(!text.contains("plugboard_outbox_dead"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn renders_every_family_with_its_labels() {
        webhook("unit-test-element", 200);
        webhook("unit-test-element", 401);
        plugin_call(
            "unit-test-element",
            "webhook",
            Duration::from_micros(120),
            Some("trap"),
        );
        delivery_attempt(DeliveryOutcome::DeadLettered, Duration::from_millis(3));
        poll_run("unit-test-element", false);
        plugin_load(false);
        plugin_breaker("unit-test-element", true, true);
        plugin_call_refused("unit-test-element");
        poll_page_fenced();
        delivery_outcomes_stale(2);
        partitions_held(256);
        let text = render(Sample {
            outbox: Some((7, 2)),
            plugins_loaded: 3,
            listen_connected: false,
        });
        for line in [
            "plugboard_webhooks_received_total{replica=\"unnamed\",element=\"unit-test-element\"}",
            "plugboard_webhooks_rejected_total{replica=\"unnamed\",element=\"unit-test-element\",status=\"401\"}",
            "plugboard_plugin_call_duration_seconds_bucket{replica=\"unnamed\",le=\"0.0002\",element=\"unit-test-element\",call=\"webhook\"} 1",
            "plugboard_plugin_errors_total{replica=\"unnamed\",element=\"unit-test-element\",kind=\"trap\"}",
            "plugboard_plugin_breaker_open{replica=\"unnamed\",element=\"unit-test-element\"} 1",
            "plugboard_plugin_breaker_openings_total{replica=\"unnamed\",element=\"unit-test-element\"} 1",
            "plugboard_plugin_calls_refused_total{replica=\"unnamed\",element=\"unit-test-element\"} 1",
            "plugboard_deliveries_total{replica=\"unnamed\",outcome=\"dead_lettered\"}",
            "plugboard_delivery_duration_seconds_count",
            "plugboard_outbox_pending{replica=\"unnamed\"} 7",
            "plugboard_outbox_dead{replica=\"unnamed\"} 2",
            "plugboard_poll_errors_total{replica=\"unnamed\",element=\"unit-test-element\"}",
            "plugboard_plugin_loads_total{replica=\"unnamed\",outcome=\"failed\"}",
            "plugboard_plugins_loaded{replica=\"unnamed\"} 3",
            "plugboard_poll_pages_fenced_total{replica=\"unnamed\"} 1",
            "plugboard_delivery_outcomes_stale_total{replica=\"unnamed\"} 2",
            "plugboard_partitions_held{replica=\"unnamed\"} 256",
            "plugboard_listen_connected{replica=\"unnamed\"} 0",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
