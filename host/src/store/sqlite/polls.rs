//! Poll pages and checkpoints: a batch of pages in one transaction, each in
//! its own savepoint, the page's receipt and notifications written
//! by the same code as a webhook's, and the checkpoint beside them; the
//! checkpoint upsert refuses to move it back.

use rusqlite::{params, Connection, TransactionBehavior};

use super::super::error::Result;
use super::super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::super::timestamp::{from_millis, now, to_millis};
use super::error::missing_instance;

/// Writes a batch of poll pages in one transaction and commits it. An item
/// that fails is rolled back alone; if the transaction fails, every item does.
pub(super) fn commit(conn: &mut Connection, batch: &[PollWrite]) -> Vec<Result<PollOutcome>> {
    if batch.is_empty() {
        return Vec::new();
    }
    match write_batch(conn, batch) {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, pages = batch.len(), "poll batch not committed");
            batch.iter().map(|_| Err(e.for_batch())).collect()
        }
    }
}

fn write_batch(conn: &mut Connection, batch: &[PollWrite]) -> Result<Vec<Result<PollOutcome>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for write in batch {
        let sp = tx.savepoint()?;
        match write_page(&sp, write) {
            Ok(outcome) => {
                sp.commit()?;
                results.push(Ok(outcome));
            }
            Err(e) if sp.is_autocommit() => return Err(e),
            Err(e) => {
                sp.finish()?;
                results.push(Err(e));
            }
        }
    }
    tx.commit()?;
    Ok(results)
}

/// Writes one page: its receipt with notifications, then the checkpoint,
/// which only moves forward. Runs inside the page's savepoint.
fn write_page(conn: &Connection, write: &PollWrite) -> Result<PollOutcome> {
    let mut outcome = PollOutcome {
        receipt_id: None,
        checkpoint_moved: false,
        fenced: false,
    };
    write.check_page()?;
    if let Some(page) = &write.page {
        // Pages carry no vendor message id, so they are never repeats.
        let stored = super::batch::write_receipt(conn, page)?;
        outcome.receipt_id = Some(stored.receipt_id().to_owned());
    }
    if let Some(checkpoint) = write.checkpoint {
        let moved = conn
            .prepare_cached(
                "INSERT INTO poll_checkpoints (instance_id, resource, checkpoint, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (instance_id, resource) DO UPDATE \
                 SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at \
                 WHERE excluded.checkpoint >= poll_checkpoints.checkpoint",
            )?
            .execute(params![
                write.instance_id,
                write.resource,
                to_millis(checkpoint),
                to_millis(now()),
            ])
            .map_err(|e| missing_instance(e, write.instance_id))?;
        outcome.checkpoint_moved = moved == 1;
    }
    Ok(outcome)
}

/// The checkpoints of an instance's resources, by resource name.
pub(super) fn checkpoints(conn: &Connection, instance_id: i64) -> Result<Vec<PollCheckpoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT resource, checkpoint, updated_at FROM poll_checkpoints \
         WHERE instance_id = ?1 ORDER BY resource",
    )?;
    let mut rows = stmt.query([instance_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(PollCheckpoint {
            resource: row.get(0)?,
            checkpoint: from_millis(row.get(1)?)?,
            updated_at: from_millis(row.get(2)?)?,
        });
    }
    Ok(out)
}
