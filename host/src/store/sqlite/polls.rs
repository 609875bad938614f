//! Poll pages and checkpoints: a batch of pages in one transaction, each in
//! its own savepoint, the page's receipt, events and notifications written
//! by the same code as a webhook's, and the checkpoint beside them.

use rusqlite::{params, Connection, TransactionBehavior};

use super::super::error::{Result, StoreError};
use super::super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::super::receipt::ReceiptOutcome;
use super::super::timestamp::{from_millis, now, to_millis};

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
            let reason = e.to_string();
            batch
                .iter()
                .map(|_| Err(StoreError::BatchAborted(reason.clone())))
                .collect()
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

/// Writes one page: its receipt with events and notifications, then the
/// checkpoint. Runs inside the page's savepoint.
fn write_page(conn: &Connection, write: &PollWrite) -> Result<PollOutcome> {
    let mut outcome = PollOutcome::default();
    if let Some(page) = &write.page {
        if page.instance_id != write.instance_id {
            return Err(StoreError::InvalidValue(format!(
                "poll page of instance {} filed under instance {}",
                page.instance_id, write.instance_id
            )));
        }
        match super::batch::write_receipt(conn, page)? {
            ReceiptOutcome::Stored {
                receipt_id,
                event_ids,
            } => {
                outcome.receipt_id = Some(receipt_id);
                outcome.event_ids = event_ids;
            }
            // Pages carry no vendor message id, so they are never repeats.
            ReceiptOutcome::Duplicate { receipt_id } => outcome.receipt_id = Some(receipt_id),
        }
    }
    if let Some(checkpoint) = write.checkpoint {
        conn.prepare_cached(
            "INSERT INTO poll_checkpoints (instance_id, resource, checkpoint, updated_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (instance_id, resource) DO UPDATE \
             SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
        )?
        .execute(params![
            write.instance_id,
            write.resource,
            to_millis(checkpoint),
            to_millis(now()),
        ])
        .map_err(|e| super::batch::missing_instance(e, write.instance_id))?;
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::super::super::receipt::NewReceipt;
    use super::super::super::test_support::{new_instance, receipt, T0};
    use super::super::{Backend, SqliteBackend};
    use super::*;

    fn backend_with_instance() -> (SqliteBackend, i64) {
        let mut b = SqliteBackend::open_in_memory().unwrap();
        let id = b.insert_instance(&new_instance("a"), "tok", T0).unwrap().id;
        (b, id)
    }

    fn write(id: i64, page: Option<NewReceipt>, checkpoint: Option<i64>) -> PollWrite {
        PollWrite {
            instance_id: id,
            resource: "tickets".into(),
            page,
            checkpoint: checkpoint.map(|s| T0 + time::Duration::seconds(s)),
        }
    }

    #[test]
    fn a_page_stores_its_events_and_moves_the_checkpoint() {
        let (mut b, id) = backend_with_instance();
        let results = b.commit_polls(&[write(id, Some(receipt(id)), Some(60))]);
        let outcome = results[0].as_ref().unwrap();
        assert_eq!(outcome.event_ids.len(), 1);
        assert!(outcome.receipt_id.is_some());
        assert_eq!(b.count_events(id).unwrap(), 1);
        let kept = b.poll_checkpoints(id).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].resource, "tickets");
        assert_eq!(kept[0].checkpoint, datetime!(2024-05-01 12:01:00 UTC));
    }

    #[test]
    fn pages_without_a_checkpoint_leave_it_and_empty_windows_move_it() {
        let (mut b, id) = backend_with_instance();
        b.commit_polls(&[write(id, None, Some(10))])[0]
            .as_ref()
            .unwrap();
        b.commit_polls(&[write(id, Some(receipt(id)), None)])[0]
            .as_ref()
            .unwrap();
        assert_eq!(
            b.poll_checkpoints(id).unwrap()[0].checkpoint,
            T0 + time::Duration::seconds(10)
        );
        b.commit_polls(&[write(id, None, Some(20))])[0]
            .as_ref()
            .unwrap();
        assert_eq!(
            b.poll_checkpoints(id).unwrap()[0].checkpoint,
            T0 + time::Duration::seconds(20)
        );
    }

    #[test]
    fn a_failing_page_stores_none_of_its_rows() {
        let (mut b, id) = backend_with_instance();
        let mut bad = receipt(id);
        if let super::super::super::receipt::ReceiptStatus::Accepted { events, .. } =
            &mut bad.outcome
        {
            events[0].date = datetime!(-0001-01-01 0:00 UTC);
        }
        let results = b.commit_polls(&[
            write(id, Some(bad), Some(30)),
            write(id + 50, None, Some(30)),
            write(id, Some(receipt(id)), None),
        ]);
        assert!(matches!(results[0], Err(StoreError::InvalidValue(_))));
        assert!(matches!(results[1], Err(StoreError::NoSuchInstance(_))));
        assert!(results[2].is_ok());
        assert_eq!(b.count_events(id).unwrap(), 1);
        assert!(b.poll_checkpoints(id).unwrap().is_empty());
    }

    #[test]
    fn deleting_the_instance_deletes_its_checkpoints() {
        let (mut b, id) = backend_with_instance();
        b.commit_polls(&[write(id, None, Some(1))])[0]
            .as_ref()
            .unwrap();
        assert!(b.delete_instance(id).unwrap());
        assert!(b.poll_checkpoints(id).unwrap().is_empty());
    }
}
