//! The circuit breaker of one element: the state machine alone, driven by
//! the caller's clock so it can be tested without waiting.
//!
//! Closed, it counts the element's plugin failures (traps, timeouts, memory
//! blow-ups) in a window of `window` starting at the first failure; the
//! `failures`-th failure within it opens the breaker. Open, every call is
//! refused until `cooldown` has passed; then the breaker is half-open and
//! lets exactly one trial call through: success closes it, failure opens it
//! for another `cooldown`. Calls admitted before the breaker opened that
//! finish later change nothing.

use std::time::{Duration, Instant};

/// The breaker's thresholds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BreakerLimits {
    /// Failures within `window` that open the breaker; 0 never opens it.
    pub(crate) failures: u32,
    /// How long failures are counted together.
    pub(crate) window: Duration,
    /// How long an open breaker refuses calls before it tries one.
    pub(crate) cooldown: Duration,
}

/// Whether a call may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Run it; `trial` when it is the half-open breaker's one trial call.
    Run {
        /// The call decides whether the breaker closes again.
        trial: bool,
    },
    /// Refuse it; the element may be tried again after `retry_after`.
    Refuse {
        /// Time until the breaker lets a call through again (at least 1 s).
        retry_after: Duration,
    },
}

/// A change of state worth a log line and a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The breaker opened after `failures` failures within the window.
    Opened {
        /// Failures counted in the window.
        failures: u32,
    },
    /// The half-open trial call failed: open again for a cool-down.
    Reopened,
    /// The cool-down is over: one trial call runs.
    HalfOpened,
    /// The trial call succeeded: calls run again.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { trial_running: bool },
}

/// One element's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    limits: BreakerLimits,
    state: State,
    /// Failures counted since `window_started` (while closed).
    failures: u32,
    window_started: Option<Instant>,
}

impl Breaker {
    /// A closed breaker.
    pub(crate) fn new(limits: BreakerLimits) -> Self {
        Self {
            limits,
            state: State::Closed,
            failures: 0,
            window_started: None,
        }
    }

    /// Whether the breaker is open or half-open.
    pub(crate) fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed)
    }

    /// Decides whether a call starting `now` may run.
    pub(crate) fn admit(&mut self, now: Instant) -> (Verdict, Option<Transition>) {
        match self.state {
            State::Closed => (Verdict::Run { trial: false }, None),
            State::Open { until } if now < until => (
                Verdict::Refuse {
                    retry_after: whole_seconds(until - now),
                },
                None,
            ),
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    trial_running: true,
                };
                (Verdict::Run { trial: true }, Some(Transition::HalfOpened))
            }
            State::HalfOpen {
                trial_running: true,
            } => (
                Verdict::Refuse {
                    retry_after: Duration::from_secs(1),
                },
                None,
            ),
            State::HalfOpen {
                trial_running: false,
            } => {
                self.state = State::HalfOpen {
                    trial_running: true,
                };
                (Verdict::Run { trial: true }, None)
            }
        }
    }

    /// Records how a call admitted with `trial` ended at `now`.
    pub(crate) fn record(&mut self, now: Instant, trial: bool, failed: bool) -> Option<Transition> {
        if trial {
            if failed {
                self.open(now);
                return Some(Transition::Reopened);
            }
            self.state = State::Closed;
            self.failures = 0;
            self.window_started = None;
            return Some(Transition::Closed);
        }
        if !failed || self.state != State::Closed || self.limits.failures == 0 {
            return None;
        }
        match self.window_started {
            Some(started) if now.saturating_duration_since(started) < self.limits.window => {
                self.failures += 1;
            }
            _ => {
                self.window_started = Some(now);
                self.failures = 1;
            }
        }
        if self.failures < self.limits.failures {
            return None;
        }
        let failures = self.failures;
        self.open(now);
        Some(Transition::Opened { failures })
    }

    /// A trial call ended without an outcome (its caller went away): the
    /// next call becomes the trial.
    pub(crate) fn abandon_trial(&mut self) {
        if self.state
            == (State::HalfOpen {
                trial_running: true,
            })
        {
            self.state = State::HalfOpen {
                trial_running: false,
            };
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open {
            until: now + self.limits.cooldown,
        };
        self.failures = 0;
        self.window_started = None;
    }
}

/// `d` rounded up to whole seconds, at least one (a `Retry-After` value).
fn whole_seconds(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BreakerLimits = BreakerLimits {
        failures: 3,
        window: Duration::from_secs(10),
        cooldown: Duration::from_secs(30),
    };

    fn run(breaker: &mut Breaker, now: Instant, failed: bool) -> Option<Transition> {
        let (verdict, _) = breaker.admit(now);
        let Verdict::Run { trial } = verdict else {
            panic!("refused at {now:?}: {verdict:?}");
        };
        breaker.record(now, trial, failed)
    }

    #[test]
    fn opens_after_the_failures_within_the_window_and_refuses_until_the_cooldown() {
        let t = Instant::now();
        let mut b = Breaker::new(LIMITS);
        assert_eq!(run(&mut b, t, true), None);
        assert_eq!(run(&mut b, t + Duration::from_secs(1), false), None);
        assert_eq!(run(&mut b, t + Duration::from_secs(2), true), None);
        assert_eq!(
            run(&mut b, t + Duration::from_secs(3), true),
            Some(Transition::Opened { failures: 3 })
        );
        assert!(b.is_open());
        let (verdict, _) = b.admit(t + Duration::from_millis(3_500));
        assert_eq!(
            verdict,
            Verdict::Refuse {
                retry_after: Duration::from_secs(30)
            },
            "rounded up to whole seconds"
        );
        let (verdict, _) = b.admit(t + Duration::from_millis(32_999));
        assert_eq!(
            verdict,
            Verdict::Refuse {
                retry_after: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_open_it() {
        let t = Instant::now();
        let mut b = Breaker::new(LIMITS);
        for i in 0..10 {
            assert_eq!(run(&mut b, t + Duration::from_secs(6 * i), true), None);
        }
        assert!(!b.is_open());
    }

    #[test]
    fn half_open_lets_one_trial_through_which_closes_or_reopens_it() {
        let t = Instant::now();
        let mut b = Breaker::new(LIMITS);
        for _ in 0..3 {
            run(&mut b, t, true);
        }
        let later = t + LIMITS.cooldown;
        assert_eq!(
            b.admit(later),
            (Verdict::Run { trial: true }, Some(Transition::HalfOpened))
        );
        assert!(
            matches!(b.admit(later).0, Verdict::Refuse { .. }),
            "one trial at a time"
        );
        assert_eq!(b.record(later, true, true), Some(Transition::Reopened));
        assert!(matches!(b.admit(later).0, Verdict::Refuse { .. }));

        let again = later + LIMITS.cooldown;
        assert_eq!(b.admit(again).0, Verdict::Run { trial: true });
        assert_eq!(b.record(again, true, false), Some(Transition::Closed));
        assert!(!b.is_open());
        assert_eq!(run(&mut b, again, true), None, "the count starts afresh");
    }

    #[test]
    fn an_abandoned_trial_hands_the_trial_to_the_next_call() {
        let t = Instant::now();
        let mut b = Breaker::new(LIMITS);
        for _ in 0..3 {
            run(&mut b, t, true);
        }
        let later = t + LIMITS.cooldown;
        assert_eq!(b.admit(later).0, Verdict::Run { trial: true });
        b.abandon_trial();
        assert_eq!(b.admit(later).0, Verdict::Run { trial: true });
    }

    #[test]
    fn calls_admitted_before_it_opened_change_nothing() {
        let t = Instant::now();
        let mut b = Breaker::new(LIMITS);
        for _ in 0..3 {
            run(&mut b, t, true);
        }
        assert_eq!(b.record(t, false, true), None);
        assert_eq!(b.record(t, false, false), None);
        assert!(b.is_open());
    }

    #[test]
    fn zero_failures_never_opens() {
        let t = Instant::now();
        let mut b = Breaker::new(BreakerLimits {
            failures: 0,
            ..LIMITS
        });
        for _ in 0..100 {
            assert_eq!(run(&mut b, t, true), None);
        }
    }
}
