//! The scheduler: one task that knows when every polled instance is due.
//!
//! - **Spread.** A newly scheduled instance is first due at a random point
//!   within its first interval, so thousands of instances created (or
//!   loaded at start-up) together do not poll together.
//! - **No drift.** Each next time is the previous *planned* time plus the
//!   interval, never the completion time plus the interval. Planned times
//!   that passed while the scheduler was behind are skipped, not replayed.
//! - **One at a time.** A due instance still being polled skips that slot
//!   (counted as `skippedBusy`).
//! - **Fresh plans.** The instance list is re-read every
//!   `reload_interval`, and one instance at once when the instance
//!   service's change channel announces a change; reads happen off the
//!   scheduling loop.
//! - **Owned partitions only.** Only instances whose partition this
//!   replica holds are scheduled; when the held set changes the list is
//!   re-read, so lost instances stop and gained ones start (a new entry
//!   reads its checkpoints from the store before its first poll).

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::plan::Plan;
use super::run::{self, Entry, Trigger};
use super::Shared;
use crate::instance::ConfiguredInstance;

/// What the scheduler is told.
#[derive(Debug)]
pub(super) enum Command {
    /// Instance `id` was created, changed or deleted; answer once applied.
    Changed(i64, oneshot::Sender<()>),
    /// Changes may have been missed: re-read every instance.
    ReloadAll,
}

/// What a background read found.
enum Loaded {
    All(Vec<Arc<ConfiguredInstance>>),
    One(i64, Option<Arc<ConfiguredInstance>>, oneshot::Sender<()>),
}

/// A planned poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    due: Instant,
    id: i64,
    generation: u64,
}

/// The scheduling state, owned by the scheduler task.
struct Schedule {
    heap: BinaryHeap<Reverse<Slot>>,
    /// Per instance: the generation of its live slots, and its interval.
    live: HashMap<i64, (u64, Duration)>,
    next_generation: u64,
}

/// Runs until the command channel closes.
pub(super) async fn run(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let (loaded_tx, mut loaded) = mpsc::unbounded_channel();
    let mut schedule = Schedule {
        heap: BinaryHeap::new(),
        live: HashMap::new(),
        next_generation: 0,
    };
    let mut holdings = shared.cluster.subscribe();
    let mut reload = tokio::time::interval(shared.config.reload_interval);
    reload.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let next_due = schedule.heap.peek().map(|Reverse(slot)| slot.due);
        let sleep = async {
            match next_due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => dispatch_due(&shared, &mut schedule),
            command = commands.recv() => match command {
                Some(Command::Changed(id, done)) => spawn_read(&shared, &loaded_tx, Some((id, done))),
                Some(Command::ReloadAll) => spawn_read(&shared, &loaded_tx, None),
                None => return,
            },
            Some(found) = loaded.recv() => apply(&shared, &mut schedule, found),
            _ = reload.tick() => spawn_read(&shared, &loaded_tx, None),
            Ok(()) = holdings.changed() => spawn_read(&shared, &loaded_tx, None),
        }
    }
}

/// Reads one instance (or all) on another task and hands the result back.
fn spawn_read(
    shared: &Arc<Shared>,
    tx: &mpsc::UnboundedSender<Loaded>,
    one: Option<(i64, oneshot::Sender<()>)>,
) {
    let (instances, tx) = (shared.instances.clone(), tx.clone());
    tokio::spawn(async move {
        let found = match one {
            Some((id, done)) => instances.load(id).await.map(|i| Loaded::One(id, i, done)),
            None => instances.list().await.map(Loaded::All),
        };
        match found {
            Ok(found) => {
                let _ = tx.send(found);
            }
            Err(e) => tracing::warn!(error = %e, "reading instances for polling failed"),
        }
    });
}

/// Starts every poll that is due and plans each instance's next one.
fn dispatch_due(shared: &Arc<Shared>, schedule: &mut Schedule) {
    let now = Instant::now();
    while let Some(Reverse(slot)) = schedule.heap.peek().copied() {
        if slot.due > now {
            break;
        }
        schedule.heap.pop();
        let Some(&(generation, interval)) = schedule.live.get(&slot.id) else {
            continue;
        };
        if generation != slot.generation {
            continue;
        }
        let Some(entry) = shared.entry(slot.id) else {
            // Dropped after a fenced write: planned again by the next read.
            schedule.live.remove(&slot.id);
            continue;
        };
        let next = next_due(slot.due, interval, now);
        schedule.heap.push(Reverse(Slot { due: next, ..slot }));
        entry.set_next_run(next);
        tokio::spawn(run::run(
            shared.clone(),
            entry,
            Trigger::Scheduled(slot.due),
        ));
    }
}

/// The planned time after `due`: one interval later, or the first planned
/// time after `now` when the scheduler fell behind (missed times are not
/// replayed).
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now || interval.is_zero() {
        return next;
    }
    let behind = (now - due).as_secs_f64() / interval.as_secs_f64();
    due + interval.mul_f64(behind.floor() + 1.0)
}

/// Brings entries and slots in line with what was read.
fn apply(shared: &Arc<Shared>, schedule: &mut Schedule, found: Loaded) {
    match found {
        Loaded::One(id, instance, done) => {
            update(shared, schedule, id, instance.as_deref());
            let _ = done.send(());
        }
        Loaded::All(instances) => {
            let seen: std::collections::HashSet<i64> = instances.iter().map(|i| i.id()).collect();
            for instance in &instances {
                update(shared, schedule, instance.id(), Some(instance));
            }
            let gone: Vec<i64> = schedule
                .live
                .keys()
                .filter(|id| !seen.contains(id))
                .copied()
                .collect();
            for id in gone {
                update(shared, schedule, id, None);
            }
        }
    }
}

/// Schedules, re-plans or drops one instance.
fn update(
    shared: &Arc<Shared>,
    schedule: &mut Schedule,
    id: i64,
    instance: Option<&ConfiguredInstance>,
) {
    // Another replica polls the instances of partitions this one lacks.
    let instance = instance.filter(|_| shared.cluster.holds(id));
    let plugin = instance.and_then(|i| shared.registry.get(&i.instance.element_key));
    let defaults = plugin
        .as_ref()
        .and_then(|p| p.plugin.description().default_poll_configuration.as_ref());
    if let (Some(instance), Some(entry)) = (instance, shared.entry(id)) {
        if entry.plan().is_current(instance, defaults) && schedule.live.contains_key(&id) {
            return; // unchanged since it was planned: nothing to parse again
        }
    }
    let min_interval = shared.config.min_interval;
    let plan = instance.and_then(|i| Plan::of(i, defaults, min_interval));
    let mut entries = shared.entries.write().expect("entries lock");
    let Some(plan) = plan else {
        if entries.remove(&id).is_some() {
            tracing::info!(instance = id, "polling stopped");
        }
        schedule.live.remove(&id);
        return;
    };
    let interval = plan.interval;
    let entry = match entries.entry(id) {
        MapEntry::Occupied(o) => {
            let entry = o.get().clone();
            let old = entry.plan();
            if old.version != plan.version || old.element_defaults != plan.element_defaults {
                entry.set_plan(plan);
            }
            entry
        }
        MapEntry::Vacant(v) => {
            tracing::info!(
                instance = id,
                interval_s = interval.as_secs_f64(),
                "polling scheduled"
            );
            v.insert(Arc::new(Entry::new(plan))).clone()
        }
    };
    drop(entries);
    if schedule.live.get(&id).is_some_and(|&(_, i)| i == interval) {
        return;
    }
    schedule.next_generation += 1;
    let generation = schedule.next_generation;
    schedule.live.insert(id, (generation, interval));
    let offset = interval.mul_f64(rand::rng().random_range(0.0..1.0));
    let due = Instant::now() + offset;
    schedule.heap.push(Reverse(Slot {
        due,
        id,
        generation,
    }));
    entry.set_next_run(due);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_times_come_from_planned_times_and_skip_missed_ones() {
        let (t0, second) = (Instant::now(), Duration::from_secs(1));
        // On time or a little late: exactly one interval after the planned time.
        assert_eq!(next_due(t0, second, t0), t0 + second);
        assert_eq!(next_due(t0, second, t0 + second / 2), t0 + second);
        // Three and a half intervals behind: the next planned time still ahead.
        assert_eq!(next_due(t0, second, t0 + second * 7 / 2), t0 + second * 4);
        assert_eq!(next_due(t0, second, t0 + second), t0 + second * 2);
    }
}
