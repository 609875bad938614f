//! SQL for the `events` table: ids, the paged event log and counts.
//!
//! Event ids are UUIDv7, whose text sorts by the millisecond they were
//! generated; the log is read newest first by id, and time bounds become id
//! bounds so every query walks an index.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension as _, Row};
use uuid::Uuid;

use super::super::error::Result;
use super::super::event::{EventQuery, StoredEvent};
use super::super::timestamp::{self, from_millis, from_rfc3339, to_millis};

/// Columns in the order [`from_row`] reads them.
const COLUMNS: &str = "id, receipt_id, instance_id, element_key, event_type, object_type, \
                       object_id, event_date, raw, created_at";

/// Largest millisecond count a UUIDv7 can hold (48 bits).
const MAX_V7_MILLIS: i64 = (1 << 48) - 1;

/// A new event id and the unix milliseconds it encodes, which is recorded
/// as the event's creation time so the two always agree.
pub(super) fn new_event_id() -> (String, i64) {
    let id = Uuid::now_v7();
    let millis = id
        .get_timestamp()
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            i64::try_from(secs).unwrap_or(MAX_V7_MILLIS) * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or_else(|| to_millis(timestamp::now()));
    (id.to_string(), millis)
}

/// The smallest UUIDv7 text of the millisecond `ms`: every id generated in
/// that millisecond or later sorts at or above it, every earlier one below.
pub(super) fn id_floor(ms: i64) -> String {
    let ms = ms.clamp(0, MAX_V7_MILLIS);
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

/// A page of the event log, newest first.
pub(super) fn list(conn: &Connection, query: &EventQuery) -> Result<Vec<StoredEvent>> {
    let mut conditions: Vec<&str> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(instance_id) = query.instance_id {
        conditions.push("instance_id = ?");
        args.push(instance_id.into());
    }
    if let Some(after) = &query.after {
        conditions.push("id < ?");
        args.push(after.clone().into());
    }
    if let Some(since) = query.since {
        conditions.push("id >= ?");
        args.push(id_floor(to_millis(since)).into());
    }
    if let Some(until) = query.until {
        conditions.push("id < ?");
        args.push(id_floor(to_millis(until).saturating_add(1)).into());
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    args.push(i64::from(query.limit).into());
    let sql = format!("SELECT {COLUMNS} FROM events {filter} ORDER BY id DESC LIMIT ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// The event with this id.
pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<StoredEvent>> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], |row| Ok(from_row(row)))
        .optional()?
        .transpose()
}

/// How many events the instance has.
pub(super) fn count(conn: &Connection, instance_id: i64) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM events WHERE instance_id = ?1")?
        .query_row([instance_id], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Decodes a row selected with [`COLUMNS`].
fn from_row(row: &Row<'_>) -> Result<StoredEvent> {
    let event_type: String = row.get(4)?;
    let date: String = row.get(7)?;
    let raw: String = row.get(8)?;
    Ok(StoredEvent {
        id: row.get(0)?,
        receipt_id: row.get(1)?,
        instance_id: row.get(2)?,
        element_key: row.get(3)?,
        event_type: event_type.parse()?,
        object_type: row.get(5)?,
        object_id: row.get(6)?,
        date: from_rfc3339(&date)?,
        raw: serde_json::from_str(&raw)?,
        created_at: from_millis(row.get(9)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::test_support::{event, new_instance, receipt, T0};
    use super::super::{Backend, SqliteBackend};
    use super::*;

    /// A backend holding two instances; the first gets `n` receipts of one
    /// event each, the second one receipt. Returns the instance ids.
    fn seeded(n: usize) -> (SqliteBackend, i64, i64) {
        let mut b = SqliteBackend::open_in_memory().unwrap();
        let a = b.insert_instance(&new_instance("a"), "ta", T0).unwrap().id;
        let other = b.insert_instance(&new_instance("b"), "tb", T0).unwrap().id;
        let mut batch: Vec<_> = (0..n).map(|_| receipt(a)).collect();
        batch.push(receipt(other));
        for result in b.commit_receipts(&batch) {
            result.unwrap();
        }
        (b, a, other)
    }

    #[test]
    fn id_floor_brackets_the_ids_of_its_millisecond() {
        for _ in 0..100 {
            let (id, ms) = new_event_id();
            assert!(id_floor(ms) <= id, "{id} vs {}", id_floor(ms));
            assert!(id < id_floor(ms + 1));
        }
        assert_eq!(id_floor(-5), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn new_ids_record_the_current_time() {
        let before = to_millis(timestamp::now());
        let (_, ms) = new_event_id();
        assert!(ms >= before && ms - before < 5_000);
    }

    #[test]
    fn lists_one_instance_newest_first_in_pages() {
        let (b, a, _) = seeded(5);
        let all = b.list_events(&EventQuery::for_instance(a)).unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id));
        assert!(all.iter().all(|e| e.instance_id == a));

        let first = EventQuery {
            limit: 2,
            ..EventQuery::for_instance(a)
        };
        let page1 = b.list_events(&first).unwrap();
        let page2 = b
            .list_events(&EventQuery {
                after: Some(page1[1].id.clone()),
                ..first.clone()
            })
            .unwrap();
        let page3 = b
            .list_events(&EventQuery {
                after: Some(page2[1].id.clone()),
                ..first
            })
            .unwrap();
        let paged: Vec<_> = page1.into_iter().chain(page2).chain(page3).collect();
        assert_eq!(paged, all);
    }

    #[test]
    fn lists_every_instance_without_a_filter() {
        let (b, a, other) = seeded(3);
        let all = b.list_events(&EventQuery::default()).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].instance_id, other, "stored last, listed first");
        assert_eq!(b.count_events(a).unwrap(), 3);
        assert_eq!(b.count_events(other).unwrap(), 1);
        assert_eq!(b.count_events(other + 1).unwrap(), 0);
    }

    #[test]
    fn time_bounds_select_by_storage_time() {
        let (b, _, _) = seeded(20);
        let all = b.list_events(&EventQuery::default()).unwrap();
        let (since, until) = (all[15].created_at, all[4].created_at);
        let query = EventQuery {
            since: Some(since),
            until: Some(until),
            ..EventQuery::default()
        };
        let expected: Vec<_> = all
            .iter()
            .filter(|e| e.created_at >= since && e.created_at <= until)
            .cloned()
            .collect();
        assert!(expected.len() >= 12);
        assert_eq!(b.list_events(&query).unwrap(), expected);
    }

    #[test]
    fn stored_event_reads_back_as_given() {
        let (b, a, _) = seeded(1);
        let listed = b
            .list_events(&EventQuery::for_instance(a))
            .unwrap()
            .remove(0);
        let given = event("42");
        assert_eq!(listed.event_type, given.event_type);
        assert_eq!(
            (listed.object_type.as_str(), listed.object_id.as_str()),
            ("ticket", "42")
        );
        assert_eq!(listed.date, given.date);
        assert_eq!(listed.raw.to_string(), given.raw.get());
        assert_eq!(listed.element_key, "connectwise");
        assert_eq!(b.get_event(&listed.id).unwrap(), Some(listed.clone()));
        assert!(b.get_event("nope").unwrap().is_none());
        let receipt = b.get_receipt(&listed.receipt_id).unwrap().unwrap();
        assert_eq!(receipt.instance_id, a);
        let json = serde_json::to_value(&listed).unwrap();
        assert_eq!(json["event_type"], "UPDATED");
        assert_eq!(json["date"], "2024-05-01T12:00:00Z");
    }
}
