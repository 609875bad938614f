//! Per-call resource limits: a memory cap enforced through wasmtime's
//! [`ResourceLimiter`], and a CPU deadline enforced through epoch
//! interruption that excludes time spent waiting on host imports.
//!
//! Both limits record *which* limit stopped the guest so the caller can
//! report "timeout" or "memory" instead of an anonymous trap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

use super::lanes::{Lane, LongCallLanes, LONG_CALL_AFTER};

/// The memory cap of one call, and whether the guest hit it.
pub(crate) struct MemoryCap {
    limit: usize,
    /// Set when the guest tried to grow past `limit`.
    pub(crate) exceeded: bool,
    /// The largest size a linear memory of the store was allowed to grow to.
    pub(crate) grown_to: usize,
}

impl MemoryCap {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            exceeded: false,
            grown_to: 0,
        }
    }

    /// The configured cap in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

/// Most table elements one instance may have; generous for interpreters
/// compiled to Wasm, small enough to stop a table-growth bomb.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grown_to = self.grown_to.max(desired.min(self.limit));
        if desired > self.limit {
            self.exceeded = true;
            wasmtime::bail!(
                "memory limit of {} bytes exceeded (wanted {desired})",
                self.limit
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The CPU deadline of one call: wall time since the call started, minus
/// the time the guest spent blocked in host imports and the time it waited
/// to be resumed after yielding to the executor (or for a lane). Once the
/// guest has run long, it goes on only in one of the runtime's lanes for
/// long calls ([`super::lanes`]).
pub(crate) struct CpuDeadline {
    started: Instant,
    in_host: Duration,
    suspended: SuspensionMeter,
    limit: Duration,
    lanes: LongCallLanes,
    lane: Lane,
    /// Set when the epoch callback stopped the guest.
    pub(crate) exceeded: bool,
}

impl CpuDeadline {
    pub(crate) fn new(limit: Duration, lanes: LongCallLanes) -> Self {
        Self {
            started: Instant::now(),
            in_host: Duration::ZERO,
            suspended: SuspensionMeter::default(),
            limit,
            lanes,
            lane: Lane::default(),
            exceeded: false,
        }
    }

    /// The guest's CPU time so far.
    fn guest_time(&self) -> Duration {
        self.started
            .elapsed()
            .saturating_sub(self.in_host)
            .saturating_sub(self.suspended.total())
    }

    /// When the guest has run long and holds no lane yet: the lane to
    /// wait for before it goes on, and the lanes to take it from.
    pub(crate) fn lane_to_wait_for(&self) -> Option<(Lane, LongCallLanes)> {
        if self.guest_time() < LONG_CALL_AFTER || self.lane.held() {
            return None;
        }
        Some((self.lane.clone(), self.lanes.clone()))
    }

    /// The call ended: gives its lane back, if it had one.
    pub(crate) fn release_lane(&self) {
        self.lane.release();
    }

    /// Excludes `spent` (time blocked in a host import) from the budget.
    pub(crate) fn credit_host_time(&mut self, spent: Duration) {
        self.in_host += spent;
    }

    /// Where a yield records how long the guest waited to be resumed.
    pub(crate) fn suspension_meter(&self) -> SuspensionMeter {
        self.suspended.clone()
    }

    /// Whether the guest has used up its budget; records it if so.
    pub(crate) fn check(&mut self) -> bool {
        if self.guest_time() >= self.limit {
            self.exceeded = true;
        }
        self.exceeded
    }

    /// The configured budget.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }
}

/// Time a call spent suspended after yielding, added up by the yields (which
/// run outside the store, hence shared).
#[derive(Clone, Default)]
pub(crate) struct SuspensionMeter(Arc<AtomicU64>);

impl SuspensionMeter {
    /// Adds one suspension.
    pub(crate) fn add(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }

    fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}
