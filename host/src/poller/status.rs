//! What the poller knows about each instance and resource, as
//! `GET /instances/{id}/poller` shows it, and the scheduling-lag samples
//! the scale benchmark reads.
//!
//! Statuses live in memory; only checkpoints are durable (in the store).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

/// Lag samples kept for [`PollerStats`]; older ones are dropped.
const LAG_SAMPLES: usize = 200_000;

/// The state of one resource of one instance.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// The resource name.
    pub resource: String,
    /// When its last poll started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run: Option<OffsetDateTime>,
    /// When its last successful poll started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<OffsetDateTime>,
    /// Why its last poll failed; `None` once a poll succeeds.
    pub last_error: Option<String>,
    /// Polls failed in a row.
    pub consecutive_failures: u32,
    /// While backing off after failures: no scheduled poll before this.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retry_at: Option<OffsetDateTime>,
    /// When its next scheduled poll is planned.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run: Option<OffsetDateTime>,
    /// The end of the last window whose events are stored.
    #[serde(with = "time::serde::rfc3339::option")]
    pub checkpoint: Option<OffsetDateTime>,
    /// Events its last successful poll stored.
    pub events_found: u64,
    /// Events stored since the host started.
    pub events_total: u64,
    /// Pages its last poll read.
    pub pages: u32,
}

/// The state of one polled instance.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// The instance id.
    pub instance_id: i64,
    /// Seconds between planned polls.
    pub interval_seconds: f64,
    /// Whether a poll is running now.
    pub running: bool,
    /// When the next scheduled poll is planned.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run: Option<OffsetDateTime>,
    /// How late (ms) the last scheduled poll started after its planned time.
    pub last_lag_ms: Option<f64>,
    /// Scheduled polls skipped because the previous one was still running.
    pub skipped_busy: u64,
    /// Per resource, in configuration order.
    pub resources: Vec<ResourceStatus>,
}

/// Counters of the whole poller, and recent scheduling lags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollerStats {
    /// Instances scheduled now.
    pub instances: usize,
    /// Scheduled polls started.
    pub runs: u64,
    /// Scheduled polls skipped because the instance was still being polled.
    pub skipped_busy: u64,
    /// Resource polls that failed.
    pub failures: u64,
    /// Recent lags between planned and actual start of scheduled polls, oldest first.
    pub lags: Vec<Duration>,
}

/// Shared counters behind [`PollerStats`].
#[derive(Default)]
pub(super) struct Counters {
    pub(super) runs: AtomicU64,
    pub(super) skipped_busy: AtomicU64,
    pub(super) failures: AtomicU64,
    lags: Mutex<VecDeque<Duration>>,
}

impl Counters {
    /// Records the lag of a scheduled poll that just started.
    pub(super) fn started(&self, lag: Duration) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let mut lags = self.lags.lock().expect("lag samples lock");
        if lags.len() == LAG_SAMPLES {
            lags.pop_front();
        }
        lags.push_back(lag);
    }

    /// A snapshot; `drain` empties the lag samples.
    pub(super) fn snapshot(&self, instances: usize, drain: bool) -> PollerStats {
        let mut lags = self.lags.lock().expect("lag samples lock");
        let samples = if drain {
            lags.drain(..).collect()
        } else {
            lags.iter().copied().collect()
        };
        PollerStats {
            instances,
            runs: self.runs.load(Ordering::Relaxed),
            skipped_busy: self.skipped_busy.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            lags: samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_samples_are_bounded_and_drained() {
        let c = Counters::default();
        for ms in 0..(LAG_SAMPLES as u64 + 5) {
            c.started(Duration::from_millis(ms));
        }
        let stats = c.snapshot(3, true);
        assert_eq!(stats.runs, LAG_SAMPLES as u64 + 5);
        assert_eq!(stats.lags.len(), LAG_SAMPLES);
        assert_eq!(stats.lags[0], Duration::from_millis(5));
        assert!(c.snapshot(3, false).lags.is_empty());
    }

    #[test]
    fn statuses_render_in_camel_case_with_rfc3339_times() {
        let s = ResourceStatus {
            resource: "tickets".into(),
            checkpoint: Some(time::macros::datetime!(2024-05-01 12:00 UTC)),
            ..ResourceStatus::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["checkpoint"], "2024-05-01T12:00:00Z");
        assert_eq!(v["lastError"], serde_json::Value::Null);
        assert_eq!(v["eventsFound"], 0);
    }
}
