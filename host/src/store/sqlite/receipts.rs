//! Reading the `receipts` table. Receipts are written by [`super::batch`].

use rusqlite::{params, Connection, OptionalExtension as _, Row};

use super::super::error::Result;
use super::super::receipt::{ReceiptState, StoredReceipt};
use super::super::timestamp::from_millis;

/// Columns in the order [`from_row`] reads them.
const COLUMNS: &str = "id, instance_id, element_key, received_at, message_id, method, path, \
                       headers, body, status, error, raw";

/// Deletes, among the next `limit` receipts after `after` (in id order)
/// received before `before_ms`, the accepted ones none of whose
/// notifications is still pending or dead-lettered; their events and
/// delivered notifications go with them (foreign-key cascade). Failed
/// receipts stay for reprocessing. Returns how many were deleted and where
/// the next call continues (`None`: nothing older is left to look at).
///
/// Receipt ids are UUIDv7, so id order is arrival order and the scan stays
/// on the primary key; each call looks at `limit` receipts at most, however
/// many of them must be kept.
pub(super) fn prune(
    conn: &Connection,
    after: Option<&str>,
    before_ms: i64,
    limit: usize,
) -> Result<(u64, Option<String>)> {
    let after = after.unwrap_or("");
    let before = super::events::id_floor(before_ms);
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT max(id) FROM (SELECT id FROM receipts WHERE id > ?1 AND id < ?2 \
             ORDER BY id LIMIT ?3)",
        )?
        .query_row(
            params![after, before, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| row.get(0),
        )?;
    let Some(last) = last else {
        return Ok((0, None));
    };
    let deleted = conn
        .prepare_cached(
            "DELETE FROM receipts WHERE id > ?1 AND id <= ?2 AND status = 'accepted' \
             AND NOT EXISTS (SELECT 1 FROM notifications n \
                             WHERE n.receipt_id = receipts.id AND n.status != 'delivered')",
        )?
        .execute(params![after, last])?;
    Ok((deleted as u64, Some(last)))
}

/// The receipt with this id.
pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<StoredReceipt>> {
    let sql = format!("SELECT {COLUMNS} FROM receipts WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], |row| Ok(from_row(row)))
        .optional()?
        .transpose()
}

/// The instance's failed receipts, oldest first.
pub(super) fn failed(conn: &Connection, instance_id: i64) -> Result<Vec<StoredReceipt>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM receipts WHERE instance_id = ?1 AND status = 'failed' ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([instance_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// Decodes a row selected with [`COLUMNS`].
fn from_row(row: &Row<'_>) -> Result<StoredReceipt> {
    let headers: String = row.get(7)?;
    let status: String = row.get(9)?;
    Ok(StoredReceipt {
        id: row.get(0)?,
        instance_id: row.get(1)?,
        element_key: row.get(2)?,
        received_at: from_millis(row.get(3)?)?,
        message_id: row.get(4)?,
        method: row.get(5)?,
        path: row.get(6)?,
        headers: serde_json::from_str(&headers)?,
        body: row.get(8)?,
        status: ReceiptState::parse(&status)?,
        error: row.get(10)?,
        raw: row.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::test_support::{failed_receipt, new_instance, receipt, T0};
    use super::super::{Backend, SqliteBackend};
    use super::*;

    #[test]
    fn receipt_reads_back_verbatim() {
        let mut b = SqliteBackend::open_in_memory().unwrap();
        let id = b.insert_instance(&new_instance("a"), "tok", T0).unwrap().id;
        let given = receipt(id);
        let outcome = b
            .commit_receipts(std::slice::from_ref(&given))
            .remove(0)
            .unwrap();
        let kept = get(&b.conn, outcome.receipt_id()).unwrap().unwrap();
        assert_eq!(kept.id, outcome.receipt_id());
        assert_eq!(kept.received_at, given.received_at);
        assert_eq!(kept.headers, given.headers);
        assert_eq!(kept.body, given.body.to_vec());
        assert_eq!(
            (kept.method.as_str(), kept.path.as_str()),
            ("POST", given.path.as_str())
        );
        assert_eq!(kept.status, ReceiptState::Accepted);
        assert!(kept.error.is_none() && kept.raw.is_some());
        assert!(get(&b.conn, "missing").unwrap().is_none());
    }

    #[test]
    fn failed_receipts_come_oldest_first_per_instance() {
        let mut b = SqliteBackend::open_in_memory().unwrap();
        let a = b.insert_instance(&new_instance("a"), "ta", T0).unwrap().id;
        let other = b.insert_instance(&new_instance("b"), "tb", T0).unwrap().id;
        let batch = [
            failed_receipt(a),
            receipt(a),
            failed_receipt(other),
            failed_receipt(a),
        ];
        let ids: Vec<String> = b
            .commit_receipts(&batch)
            .into_iter()
            .map(|r| r.unwrap().receipt_id().to_owned())
            .collect();
        let failed_ids: Vec<String> = failed(&b.conn, a)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(failed_ids, vec![ids[0].clone(), ids[3].clone()]);
    }
}
