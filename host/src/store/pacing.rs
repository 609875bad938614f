//! Fair shares and pacing of delivery claims: what a claim may take of each
//! instance's due notifications, the same for every backend.
//!
//! - **Fair share.** A claim takes at most an instance's room: the
//!   per-instance cap ([`ClaimRules::per_instance`]) less its notifications
//!   under an unexpired lease (in flight here or on any other replica, as
//!   the database shows them). Instances are visited one by one, each with
//!   its own oldest-due-first index range, so one instance's backlog is
//!   never scanned to find another's due notifications.
//! - **Pacing.** An instance with a [`Rate`] is paced by the generic cell
//!   rate algorithm: its pacing row holds the theoretical time of its next
//!   send (`next_send_us`); a claim takes a notification of it only while
//!   that time less the burst tolerance has come, and moves the time on by
//!   one interval per notification taken, in the claim's transaction (a
//!   row lock on PostgreSQL), so retries, redeliveries and every replica
//!   draw on the same pace.

use std::collections::HashMap;

/// Burst allowed to a paced instance, as a share of its rate: a tenth of
/// a second's worth of requests (at least one) may go at once.
const BURST_SECONDS: f64 = 0.1;

/// A per-instance rate limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Requests per second (positive).
    pub per_second: f64,
}

impl Rate {
    /// The time between two sends, in microseconds (at least 1).
    pub(super) fn interval_us(self) -> i64 {
        ((1_000_000.0 / self.per_second).round() as i64).max(1)
    }

    /// How many requests may go at once after an idle time: a tenth of a
    /// second's worth, at least one.
    pub fn burst(self) -> u32 {
        ((self.per_second * BURST_SECONDS).floor() as u32).max(1)
    }

    /// The burst tolerance of the cell rate algorithm, in microseconds.
    fn tolerance_us(self) -> i64 {
        i64::from(self.burst() - 1) * self.interval_us()
    }

    /// What an instance paced at this rate may send at `now_us`, given the
    /// theoretical time of its next send (`None` if it never sent).
    pub(super) fn allowance(self, next_send_us: Option<i64>, now_us: i64) -> Allowance {
        let start = next_send_us.map_or(now_us, |t| t.max(now_us));
        let slack = now_us + self.tolerance_us() - start;
        let allowed = if slack < 0 {
            0
        } else {
            u32::try_from(slack / self.interval_us() + 1).unwrap_or(u32::MAX)
        };
        Allowance {
            allowed,
            start,
            rate: self,
        }
    }
}

/// What a paced instance may send in one claim.
#[derive(Clone, Copy, Debug)]
pub(super) struct Allowance {
    /// Notifications it may be handed now.
    pub(super) allowed: u32,
    start: i64,
    rate: Rate,
}

impl Allowance {
    /// The instance's next theoretical send time once `taken`
    /// notifications were handed out.
    pub(super) fn next_send_us(&self, taken: u32) -> i64 {
        self.start + i64::from(taken) * self.rate.interval_us()
    }

    /// When the instance may send again after `taken` were handed out,
    /// in unix milliseconds (rounded up).
    pub(super) fn next_free_ms(&self, taken: u32) -> i64 {
        let us = self.next_send_us(taken) - self.rate.tolerance_us();
        us.div_euclid(1000) + i64::from(us.rem_euclid(1000) > 0)
    }
}

/// The limits a claim observes.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimRules {
    /// Most notifications of one instance under a lease at once.
    pub per_instance: u32,
    /// The rate limits of paced instances, by instance id.
    pub rates: HashMap<i64, Rate>,
}

impl ClaimRules {
    /// No per-instance cap and no pacing.
    pub fn unlimited() -> Self {
        Self {
            per_instance: u32::MAX,
            rates: HashMap::new(),
        }
    }
}

/// What one claim handed out, and what it held back.
#[derive(Clone, Debug, Default)]
pub struct Claimed {
    /// The notifications claimed, oldest due first.
    pub due: Vec<crate::store::DueNotification>,
    /// Instances with due notifications left unclaimed because their room
    /// was used up (they go once one of theirs is recorded).
    pub capped: u32,
    /// Instances with due notifications left unclaimed by their rate limit.
    pub paced: u32,
    /// When the earliest of those paced instances may send again.
    pub next_paced_at: Option<time::OffsetDateTime>,
}

/// One instance with due notifications, as a claim sees it.
pub(super) struct DueInstance {
    /// The instance id.
    pub(super) id: i64,
    /// Its notifications under an unexpired lease.
    pub(super) leased: u32,
}

/// How many of each due instance's notifications a claim may take, given
/// the rules and (for paced ones) their pacing rows; counts the instances
/// held back in `claimed`.
pub(super) fn shares(
    rules: &ClaimRules,
    due: &[DueInstance],
    pacing: &HashMap<i64, i64>,
    now_us: i64,
    claimed: &mut Claimed,
) -> Vec<Share> {
    let mut out = Vec::with_capacity(due.len());
    for d in due {
        let room = rules.per_instance.saturating_sub(d.leased);
        if room == 0 {
            claimed.capped += 1;
            continue;
        }
        let allowance = rules
            .rates
            .get(&d.id)
            .map(|rate| rate.allowance(pacing.get(&d.id).copied(), now_us));
        let take = allowance.map_or(room, |a| a.allowed.min(room));
        out.push(Share {
            instance_id: d.id,
            take,
            allowance,
        });
    }
    out
}

/// What a claim may take of one instance.
pub(super) struct Share {
    /// The instance id.
    pub(super) instance_id: i64,
    /// Most notifications to take (0 when its pace holds it back).
    pub(super) take: u32,
    /// Its pace, if it has one.
    pub(super) allowance: Option<Allowance>,
}

/// After the claim: the paced instances' new pacing rows
/// (`(instance, next_send_us)`, for those that sent) and the instances
/// their rate held back, with when the earliest may send again.
pub(super) fn settle(
    shares: &[Share],
    taken: &HashMap<i64, u32>,
    claimed: &mut Claimed,
) -> Vec<(i64, i64)> {
    let mut rows = Vec::new();
    let mut next: Option<i64> = None;
    for s in shares {
        let Some(a) = s.allowance else { continue };
        let n = taken.get(&s.instance_id).copied().unwrap_or(0);
        if n > 0 {
            rows.push((s.instance_id, a.next_send_us(n)));
        }
        if n >= a.allowed {
            // Its pace, not its room or the claim's size, stopped it.
            claimed.paced += 1;
            let at = a.next_free_ms(n);
            next = Some(next.map_or(at, |t: i64| t.min(at)));
        }
    }
    claimed.next_paced_at = next.and_then(|ms| super::timestamp::from_millis(ms).ok());
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pace_allows_its_burst_then_one_per_interval() {
        let rate = Rate { per_second: 50.0 };
        assert_eq!(rate.interval_us(), 20_000);
        assert_eq!(rate.burst(), 5);
        let now = 1_000_000_000;
        let first = rate.allowance(None, now);
        assert_eq!(first.allowed, 5);
        let after = first.next_send_us(5);
        assert_eq!(after, now + 100_000);
        // Right after the burst: nothing; one interval later: one.
        assert_eq!(rate.allowance(Some(after), now).allowed, 0);
        assert_eq!(rate.allowance(Some(after), now + 20_000).allowed, 1);
        assert_eq!(first.next_free_ms(5), (now + 20_000) / 1000);
    }

    #[test]
    fn a_slow_pace_sends_one_at_a_time() {
        let rate = Rate { per_second: 5.0 };
        assert_eq!(rate.burst(), 1);
        let now = 5_000_000;
        let a = rate.allowance(None, now);
        assert_eq!(a.allowed, 1);
        let next = a.next_send_us(1);
        assert_eq!(rate.allowance(Some(next), now + 199_999).allowed, 0);
        assert_eq!(rate.allowance(Some(next), now + 200_000).allowed, 1);
        // A long idle time does not save up sends beyond the burst.
        assert_eq!(rate.allowance(Some(next), now + 60_000_000).allowed, 1);
    }
}
