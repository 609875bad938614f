//! The group-commit write path: a batch of receipts in one transaction,
//! de-duplicated by vendor message id.
//!
//! A batch is first written as it comes, without savepoints: inside a
//! savepoint SQLite copies each page a receipt is first to change (every
//! table and index it touches) into a journal of the savepoint, in a
//! profile about a seventh of the store's work per webhook. If any receipt
//! of the batch fails (one for an instance deleted meanwhile, say), that
//! transaction is rolled back and the batch is written again with each
//! receipt in its own savepoint, so the bad one fails alone and its
//! neighbours are stored, as the PostgreSQL store writes a failed batch
//! again receipt by receipt.

use rusqlite::{params, Connection, TransactionBehavior};
use uuid::Uuid;

use super::super::error::Result;
use super::super::receipt::{NewReceipt, ReceiptOutcome, ReceiptState, ReceiptStatus};
use super::super::timestamp::to_millis;
use super::error::missing_instance;

/// Writes a batch in one transaction and commits it (one `fsync` under
/// `synchronous = FULL`). A receipt that fails is reported alone; if the
/// transaction as a whole fails, every receipt fails.
pub(super) fn commit(conn: &mut Connection, batch: &[NewReceipt]) -> Vec<Result<ReceiptOutcome>> {
    if batch.is_empty() {
        return Vec::new();
    }
    let written = match write_together(conn, batch) {
        Ok(Some(results)) => Ok(results),
        Ok(None) => write_apart(conn, batch),
        Err(e) => Err(e),
    };
    match written {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, receipts = batch.len(), "receipt batch not committed");
            batch.iter().map(|_| Err(e.for_batch())).collect()
        }
    }
}

/// Writes and commits the batch without savepoints; `None` (with nothing
/// stored) when a receipt failed, which [`write_apart`] then isolates.
fn write_together(
    conn: &mut Connection,
    batch: &[NewReceipt],
) -> Result<Option<Vec<Result<ReceiptOutcome>>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for receipt in batch {
        match write_receipt(&tx, receipt) {
            Ok(outcome) => results.push(Ok(outcome)),
            // Dropping the transaction rolls it back.
            Err(e) => {
                tracing::debug!(error = %e, receipts = batch.len(), "receipt batch written again receipt by receipt");
                return Ok(None);
            }
        }
    }
    tx.commit()?;
    Ok(Some(results))
}

/// Writes the batch with each receipt in its own savepoint: one that fails
/// is rolled back to its savepoint and reported alone. An error here means
/// nothing of the batch is stored.
fn write_apart(conn: &mut Connection, batch: &[NewReceipt]) -> Result<Vec<Result<ReceiptOutcome>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for receipt in batch {
        let sp = tx.savepoint()?;
        match write_receipt(&sp, receipt) {
            Ok(outcome) => {
                sp.commit()?;
                results.push(Ok(outcome));
            }
            // SQLite abandons the whole transaction on some errors (disk full,
            // I/O): nothing of the batch will be stored.
            Err(e) if sp.is_autocommit() => return Err(e),
            Err(e) => {
                sp.finish()?; // rolls back to the savepoint and releases it
                results.push(Err(e));
            }
        }
    }
    tx.commit()?;
    Ok(results)
}

/// Writes one receipt with its notifications, unless it repeats an
/// accepted one.
///
/// This runs inside the receipt's savepoint: every row that must be stored
/// if and only if the receipt is belongs here. De-duplication is the unique
/// key on `(instance_id, dedup_key)`: an accepted receipt with a message id
/// (and a window) takes the key with an insert that does nothing on
/// conflict, so two writers can never both store the same message; a
/// holder older than the window gives the key up to the newcomer.
pub(super) fn write_receipt(conn: &Connection, receipt: &NewReceipt) -> Result<ReceiptOutcome> {
    let receipt_id = Uuid::now_v7().to_string();
    let (status, error, notifications) = match &receipt.outcome {
        ReceiptStatus::Accepted { notifications } => {
            (ReceiptState::Accepted, None, notifications.as_slice())
        }
        ReceiptStatus::Failed { error } => (ReceiptState::Failed, Some(error.as_str()), &[][..]),
    };
    let dedup_key = receipt
        .message_id
        .as_deref()
        .filter(|_| status == ReceiptState::Accepted && !receipt.dedup_window.is_zero());
    let row = ReceiptRow {
        id: &receipt_id,
        receipt,
        dedup_key,
        status,
        error,
    };
    if !row.insert(conn)? {
        let key = dedup_key.unwrap_or_default();
        let window = i64::try_from(receipt.dedup_window.as_millis()).unwrap_or(i64::MAX);
        let since = to_millis(receipt.received_at).saturating_sub(window);
        // The key is held: by a receipt within the window (a repeat), or by
        // an older one, which gives it up.
        let released = conn
            .prepare_cached(
                "UPDATE receipts SET dedup_key = NULL \
                 WHERE instance_id = ?1 AND dedup_key = ?2 AND received_at < ?3",
            )?
            .execute(params![receipt.instance_id, key, since])?;
        if released == 0 || !row.insert(conn)? {
            let original: String = conn
                .prepare_cached(
                    "SELECT id FROM receipts WHERE instance_id = ?1 AND dedup_key = ?2",
                )?
                .query_row(params![receipt.instance_id, key], |r| r.get(0))?;
            return Ok(ReceiptOutcome::Duplicate {
                receipt_id: original,
            });
        }
    }
    super::outbox::insert(
        conn,
        receipt.instance_id,
        Some(&receipt_id),
        to_millis(receipt.received_at),
        notifications,
    )?;
    Ok(ReceiptOutcome::Stored { receipt_id })
}

/// One row of `receipts`, ready to insert.
struct ReceiptRow<'a> {
    id: &'a str,
    receipt: &'a NewReceipt,
    dedup_key: Option<&'a str>,
    status: ReceiptState,
    error: Option<&'a str>,
}

impl ReceiptRow<'_> {
    /// Inserts the row; false if its de-duplication key is taken.
    fn insert(&self, conn: &Connection) -> Result<bool> {
        let r = self.receipt;
        let inserted = conn
            .prepare_cached(
                "INSERT INTO receipts (id, instance_id, element_key, received_at, message_id, \
                 dedup_key, method, path, headers, body, status, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                self.id,
                r.instance_id,
                r.element_key,
                to_millis(r.received_at),
                r.message_id,
                self.dedup_key,
                r.method,
                r.path,
                serde_json::to_string(&r.headers)?,
                &r.body[..],
                self.status.as_str(),
                self.error,
            ])
            .map_err(|e| missing_instance(e, r.instance_id))?;
        Ok(inserted == 1)
    }
}
