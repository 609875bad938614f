//! When to try a failed delivery again.
//!
//! The default schedule is the one the leading webhook services use (SPEC
//! §5): immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts
//! over about 27.6 hours — each delay with ±20 % jitter. A receiver that
//! timed out or answered 429 waits at least a minute; a `Retry-After` is
//! honoured but clamped.

use std::time::Duration;

use rand::Rng;

/// The retry policy of deliveries.
#[derive(Clone, Debug)]
pub struct RetrySchedule {
    /// Delay before each attempt; the first is normally zero. Its length is
    /// the number of attempts before a notification is dead-lettered.
    pub delays: Vec<Duration>,
    /// Relative jitter applied to each delay (0.2 = ±20 %).
    pub jitter: f64,
    /// Least wait after a timeout or a 429.
    pub min_backoff_on_throttle: Duration,
    /// Largest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            delays: vec![
                s(0),
                s(5),
                s(300),
                s(1800),
                s(7200),
                s(18000),
                s(36000),
                s(36000),
            ],
            jitter: 0.2,
            min_backoff_on_throttle: s(60),
            max_retry_after: s(6 * 3600),
        }
    }
}

/// Why an attempt failed, as far as scheduling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The receiver did not answer in time.
    Timeout,
    /// The receiver answered 429; `Retry-After` in seconds if it gave one.
    Throttled(Option<u64>),
    /// Any other failure; `Retry-After` in seconds if the receiver gave one.
    Other(Option<u64>),
}

impl RetrySchedule {
    /// The wait before attempt `next` (1-based count of attempts made so
    /// far + 1), or `None` when attempts are used up.
    pub fn next_delay(&self, attempts_made: u32, failure: Failure) -> Option<Duration> {
        let base = *self.delays.get(attempts_made as usize)?;
        let jittered = if self.jitter > 0.0 && !base.is_zero() {
            let f = rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
            base.mul_f64(f)
        } else {
            base
        };
        let retry_after = match failure {
            Failure::Throttled(r) | Failure::Other(r) => r.map(Duration::from_secs),
            Failure::Timeout => None,
        };
        let floor = match failure {
            Failure::Timeout | Failure::Throttled(_) => self.min_backoff_on_throttle,
            Failure::Other(_) => Duration::ZERO,
        };
        let wanted = retry_after.map_or(jittered, |r| r.min(self.max_retry_after).max(jittered));
        Some(wanted.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_spans_about_27_hours_in_eight_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.delays.len(), 8);
        let total: Duration = s.delays.iter().sum();
        assert!((total.as_secs_f64() / 3600.0 - 27.58).abs() < 0.01);
        assert_eq!(s.next_delay(8, Failure::Other(None)), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let s = RetrySchedule::default();
        for _ in 0..200 {
            let d = s.next_delay(2, Failure::Other(None)).unwrap().as_secs_f64();
            assert!((240.0..=360.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn throttling_waits_a_minute_and_retry_after_is_clamped() {
        let s = RetrySchedule::default();
        assert!(s.next_delay(1, Failure::Throttled(None)).unwrap() >= Duration::from_secs(60));
        assert!(s.next_delay(1, Failure::Timeout).unwrap() >= Duration::from_secs(60));
        let huge = s
            .next_delay(1, Failure::Throttled(Some(10_000_000)))
            .unwrap();
        assert_eq!(huge, Duration::from_secs(6 * 3600));
        let asked = s.next_delay(1, Failure::Other(Some(120))).unwrap();
        assert_eq!(asked, Duration::from_secs(120));
    }
}
