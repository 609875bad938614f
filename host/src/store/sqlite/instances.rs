//! SQL for the `instances` table.

use rusqlite::{params, Connection, OptionalExtension as _, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::super::error::{Result, StoreError};
use super::super::instance::{Instance, InstancePatch, NewInstance};
use super::super::timestamp::{from_millis, to_millis};

/// Columns in the order [`from_row`] reads them.
const COLUMNS: &str = "id, token, element_key, name, tags, configuration, events_enabled, \
                       created_at, updated_at, delivery_paused, version";

/// Inserts an instance and reads it back.
pub(super) fn insert(
    conn: &Connection,
    new: &NewInstance,
    token: &str,
    now: OffsetDateTime,
) -> Result<Instance> {
    conn.prepare_cached(
        "INSERT INTO instances \
         (token, element_key, name, tags, configuration, events_enabled, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        token,
        new.element_key,
        new.name,
        serde_json::to_string(&new.tags)?,
        serde_json::to_string(&new.configuration)?,
        new.events_enabled,
        to_millis(now),
    ])?;
    let id = conn.last_insert_rowid();
    get(conn, id)?.ok_or_else(|| StoreError::corrupt(format!("instance {id} vanished on insert")))
}

/// Replaces the fields the patch names, parks or unparks the instance's
/// notifications and keeps a retired signing key, all in one transaction,
/// then reads the result back. With `expected_version`, changes nothing and
/// fails with a conflict unless the instance is at that version.
pub(super) fn update(
    conn: &mut Connection,
    id: i64,
    expected_version: Option<i64>,
    patch: &InstancePatch,
    now: OffsetDateTime,
) -> Result<Option<Instance>> {
    let (tags, configuration) = patch.json_columns()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let changed = tx
        .prepare_cached(
            "UPDATE instances SET \
             name = coalesce(?2, name), \
             tags = coalesce(?3, tags), \
             configuration = coalesce(?4, configuration), \
             events_enabled = coalesce(?5, events_enabled), \
             delivery_paused = CASE WHEN ?7 THEN ?8 ELSE delivery_paused END, \
             updated_at = ?6, version = version + 1 \
             WHERE id = ?1 AND (?9 IS NULL OR version = ?9)",
        )?
        .execute(params![
            id,
            patch.name,
            tags,
            configuration,
            patch.events_enabled,
            to_millis(now),
            patch.delivery_paused.is_some(),
            patch.delivery_paused.clone().flatten(),
            expected_version,
        ])?;
    if changed == 0 {
        return match (get(&tx, id)?, expected_version) {
            (Some(found), Some(expected)) => {
                Err(StoreError::version_conflict(id, expected, found.version))
            }
            _ => Ok(None),
        };
    }
    if let Some((key, until)) = &patch.retire_signing_key {
        tx.prepare_cached(
            "INSERT INTO retired_signing_keys (instance_id, key, expires_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![id, key, to_millis(*until)])?;
    }
    let updated = get(&tx, id)?;
    tx.commit()?;
    Ok(updated)
}

/// Deletes an instance; everything it owns goes with it.
pub(super) fn delete(conn: &Connection, id: i64) -> Result<bool> {
    let deleted = conn
        .prepare_cached("DELETE FROM instances WHERE id = ?1")?
        .execute([id])?;
    Ok(deleted > 0)
}

/// The instance with this id.
pub(super) fn get(conn: &Connection, id: i64) -> Result<Option<Instance>> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], |row| Ok(from_row(row)))
        .optional()?
        .transpose()
}

/// Every instance, by id.
pub(super) fn list(conn: &Connection) -> Result<Vec<Instance>> {
    let sql = format!("SELECT {COLUMNS} FROM instances ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// Decodes a row selected with [`COLUMNS`].
fn from_row(row: &Row<'_>) -> Result<Instance> {
    let tags: String = row.get(4)?;
    let configuration: String = row.get(5)?;
    Ok(Instance {
        id: row.get(0)?,
        token: row.get(1)?,
        element_key: row.get(2)?,
        name: row.get(3)?,
        tags: serde_json::from_str(&tags)?,
        configuration: serde_json::from_str(&configuration)?,
        events_enabled: row.get(6)?,
        created_at: from_millis(row.get(7)?)?,
        updated_at: from_millis(row.get(8)?)?,
        delivery_paused: row.get(9)?,
        version: row.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::connection::Conn;
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn backend() -> Conn {
        Conn::open_in_memory().unwrap()
    }

    fn new_instance(name: &str) -> NewInstance {
        NewInstance {
            element_key: "connectwise".into(),
            name: name.into(),
            tags: vec!["prod".into(), "eu".into()],
            configuration: json!({"event.poller.refresh_interval": "15", "nested": {"a": [1, 2]}})
                .as_object()
                .cloned()
                .unwrap(),
            events_enabled: true,
        }
    }

    #[test]
    fn inserted_instance_reads_back_as_given() {
        let b = backend();
        let t0 = datetime!(2024-05-01 12:00:00.250 UTC);
        let created = insert(&b.conn, &new_instance("a"), "tok-a", t0).unwrap();
        assert!(created.id > 0);
        assert_eq!(created.token, "tok-a");
        assert_eq!(created.tags, vec!["prod", "eu"]);
        assert_eq!(created.configuration["nested"], json!({"a": [1, 2]}));
        assert_eq!(created.created_at, t0);
        assert_eq!(created.version, 1);
        assert_eq!(get(&b.conn, created.id).unwrap().unwrap(), created);
    }

    #[test]
    fn tokens_are_unique() {
        let b = backend();
        let t0 = datetime!(2024-05-01 12:00:00 UTC);
        insert(&b.conn, &new_instance("a"), "same", t0).unwrap();
        let err = insert(&b.conn, &new_instance("b"), "same", t0).unwrap_err();
        assert!(err.to_string().contains("UNIQUE"), "{err}");
        assert_eq!(list(&b.conn).unwrap().len(), 1);
    }

    #[test]
    fn update_replaces_only_what_the_patch_names() {
        let mut b = backend();
        let t0 = datetime!(2024-05-01 12:00:00 UTC);
        let t1 = datetime!(2024-05-02 12:00:00 UTC);
        let created = insert(&b.conn, &new_instance("a"), "tok", t0).unwrap();
        let patch = InstancePatch {
            name: Some("renamed".into()),
            configuration: Some(json!({"only": true}).as_object().cloned().unwrap()),
            ..InstancePatch::default()
        };
        let updated = update(&mut b.conn, created.id, None, &patch, t1)
            .unwrap()
            .unwrap();
        assert_eq!(updated.name, "renamed");
        assert_eq!(updated.tags, created.tags);
        assert_eq!(updated.configuration.len(), 1);
        assert!(updated.events_enabled);
        assert_eq!((updated.created_at, updated.updated_at), (t0, t1));
        assert_eq!(updated.version, 2);
        assert!(update(&mut b.conn, created.id + 1, None, &patch, t1)
            .unwrap()
            .is_none());
    }

    #[test]
    fn delete_reports_whether_anything_was_there() {
        let b = backend();
        let t0 = datetime!(2024-05-01 12:00:00 UTC);
        let a = insert(&b.conn, &new_instance("a"), "a", t0).unwrap();
        let c = insert(&b.conn, &new_instance("c"), "c", t0).unwrap();
        assert!(delete(&b.conn, a.id).unwrap());
        assert!(!delete(&b.conn, a.id).unwrap());
        assert_eq!(list(&b.conn).unwrap(), vec![c]);
    }
}
