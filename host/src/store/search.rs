//! Searching the event log: the conditions a [`NotificationQuery`] puts on
//! notifications, written once as SQL both backends run (with `?` for each
//! bound value; PostgreSQL numbers them).
//!
//! What keeps a search fast on millions of notifications, newest first
//! with a cursor:
//! - a time range (`since`/`until`) also bounds the id, because ids are
//!   UUIDv7 and sort by the millisecond they were made (at or after the
//!   notification's time, at most [`ACCEPT_LAG_MS`] later), so every search
//!   walks a primary key or an `(…, id)` index from the right place;
//! - `objectId` and `objectType` are looked up in `notification_events`
//!   (one row per event a notification carries) by their own indexes,
//!   `(object_id, notification_id)` and `(object_type, notification_id)`;
//!   the event's other fields are checked on the same row, so all of them
//!   must hold for one event;
//! - `eventType` alone is checked per notification, newest first, on the
//!   events' `notification_id` index (four values: no index narrows it);
//! - an element is its instances: `instance_id IN (…)` on the
//!   `(instance_id, id)` index; a status on the status index, `FILTERED`
//!   (stored `delivered` with the `filtered` flag) on a partial index of
//!   the filtered notifications.

use super::ids::id_floor;
use super::outbox::{DeliveryState, NotificationQuery};
use super::timestamp::to_millis;

/// How much later than its notification's time (`created_at`, when the
/// receipt arrived or the poll page was read) its id is made, at most, with
/// a wide margin: the id is made when the plugin's events are accepted,
/// within the request's or poll's deadlines.
const ACCEPT_LAG_MS: i64 = 3_600_000;

/// A value bound to a `?` of a condition.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Arg {
    /// Text.
    Text(String),
    /// A number.
    Int(i64),
}

/// The `WHERE` conditions of a search on `notifications` (each starting
/// with ` AND `) and their values in order, the cursor included.
pub(super) fn conditions(q: &NotificationQuery) -> (String, Vec<Arg>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    let mut add = |clause: &str, values: Vec<Arg>| {
        sql.push_str(clause);
        args.extend(values);
    };
    if let Some(id) = q.instance_id {
        add(" AND instance_id = ?", vec![Arg::Int(id)]);
    }
    if let Some(element) = &q.element_key {
        add(
            " AND instance_id IN (SELECT id FROM instances WHERE element_key = ?)",
            vec![Arg::Text(element.clone())],
        );
    }
    if let Some(state) = q.state {
        // A literal of the enum (never caller text), so a planner can use
        // a partial index on it.
        add(&format!(" AND status = '{}'", state.as_str()), vec![]);
        match state {
            DeliveryState::Delivered => add(" AND NOT filtered", vec![]),
            DeliveryState::Filtered => add(" AND filtered", vec![]),
            DeliveryState::Pending | DeliveryState::Dead => {}
        }
    }
    match q.attempted {
        Some(true) => add(" AND attempts > 0", vec![]),
        Some(false) => add(" AND attempts = 0", vec![]),
        None => {}
    }
    let (id_bounds, bound_args) = id_bounds(q, "id");
    add(&id_bounds, bound_args);
    if let Some(since) = q.since {
        add(" AND created_at >= ?", vec![Arg::Int(to_millis(since))]);
    }
    if let Some(until) = q.until {
        add(" AND created_at < ?", vec![Arg::Int(to_millis(until))]);
    }
    let (events, event_args) = event_condition(q);
    add(&events, event_args);
    (sql, args)
}

/// The id range a search covers: below the cursor, and the UUIDv7 range of
/// its time range, on column `column`.
fn id_bounds(q: &NotificationQuery, column: &str) -> (String, Vec<Arg>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    if let Some(after) = &q.after {
        sql.push_str(&format!(" AND {column} < ?"));
        args.push(Arg::Text(after.clone()));
    }
    if let Some(since) = q.since {
        sql.push_str(&format!(" AND {column} >= ?"));
        args.push(Arg::Text(id_floor(to_millis(since))));
    }
    if let Some(until) = q.until {
        // An id is made after its notification's time (the receipt's), at
        // most the acceptance of one request or poll page later; the exact
        // bound is checked on `created_at`.
        sql.push_str(&format!(" AND {column} < ?"));
        args.push(Arg::Text(id_floor(to_millis(until) + ACCEPT_LAG_MS)));
    }
    (sql, args)
}

/// The condition on the events a notification carries: one of them has
/// every field asked for.
fn event_condition(q: &NotificationQuery) -> (String, Vec<Arg>) {
    let mut fields = String::new();
    let mut args = Vec::new();
    for (column, value) in [
        ("object_id", &q.object_id),
        ("object_type", &q.object_type),
        ("event_type", &q.event_type),
    ] {
        if let Some(v) = value {
            fields.push_str(&format!(" AND e.{column} = ?"));
            args.push(Arg::Text(v.clone()));
        }
    }
    if args.is_empty() {
        return (String::new(), args);
    }
    if q.object_id.is_none() && q.object_type.is_none() {
        // Only the event type: checked per notification, newest first.
        let sql = format!(
            " AND EXISTS (SELECT 1 FROM notification_events e \
             WHERE e.notification_id = notifications.id{fields})"
        );
        return (sql, args);
    }
    // Driven by the object's index, within the same id range.
    let (bounds, bound_args) = id_bounds(q, "e.notification_id");
    args.extend(bound_args);
    let sql = format!(
        " AND id IN (SELECT e.notification_id FROM notification_events e WHERE true{fields}{bounds})"
    );
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_bound_and_every_placeholder_has_one() {
        let q = NotificationQuery {
            instance_id: Some(3),
            element_key: Some("github".into()),
            object_id: Some("42".into()),
            event_type: Some("CREATED".into()),
            after: Some("0190".into()),
            since: Some(time::macros::datetime!(2024-05-01 0:00 UTC)),
            ..NotificationQuery::default()
        };
        let (sql, args) = conditions(&q);
        assert_eq!(sql.matches('?').count(), args.len(), "{sql}");
        assert!(sql.contains("e.object_id = ?"), "{sql}");
        assert!(!sql.contains("42") && !sql.contains("github"), "{sql}");
    }
}
