//! The group-commit write path: a batch of receipts in one transaction,
//! each receipt in its own savepoint, de-duplicated by vendor message id.

use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};
use uuid::Uuid;

use super::super::error::{Result, StoreError};
use super::super::event::NewEvent;
use super::super::receipt::{NewReceipt, ReceiptOutcome, ReceiptState, ReceiptStatus};
use super::super::timestamp::{to_millis, to_rfc3339};

/// Writes a batch in one transaction and commits it (one `fsync` under
/// `synchronous = FULL`). An item that fails is rolled back to its savepoint
/// and reported alone; if the transaction as a whole fails, every item fails.
pub(super) fn commit(conn: &mut Connection, batch: &[NewReceipt]) -> Vec<Result<ReceiptOutcome>> {
    if batch.is_empty() {
        return Vec::new();
    }
    match write_batch(conn, batch) {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, receipts = batch.len(), "receipt batch not committed");
            let reason = e.to_string();
            batch
                .iter()
                .map(|_| Err(StoreError::BatchAborted(reason.clone())))
                .collect()
        }
    }
}

/// The transaction behind [`commit`]; an error here means nothing of the
/// batch is stored.
fn write_batch(conn: &mut Connection, batch: &[NewReceipt]) -> Result<Vec<Result<ReceiptOutcome>>> {
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

/// Writes one receipt with its events, unless it repeats an accepted one.
///
/// This runs inside the receipt's savepoint: every row that must be stored
/// if and only if the receipt is belongs here.
pub(super) fn write_receipt(conn: &Connection, receipt: &NewReceipt) -> Result<ReceiptOutcome> {
    if let Some(original) = find_duplicate(conn, receipt)? {
        return Ok(ReceiptOutcome::Duplicate {
            receipt_id: original,
        });
    }
    let receipt_id = Uuid::now_v7().to_string();
    let (status, error, raw, events, notifications) = match &receipt.outcome {
        ReceiptStatus::Accepted {
            raw,
            events,
            notifications,
        } => (
            ReceiptState::Accepted,
            None,
            distinct_raw(raw.as_deref(), &receipt.body),
            events.as_slice(),
            notifications.as_slice(),
        ),
        ReceiptStatus::Failed { error } => (
            ReceiptState::Failed,
            Some(error.as_str()),
            None,
            &[][..],
            &[][..],
        ),
    };
    conn.prepare_cached(
        "INSERT INTO receipts (id, instance_id, element_key, received_at, message_id, method, \
         path, headers, body, status, error, raw) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        receipt_id,
        receipt.instance_id,
        receipt.element_key,
        to_millis(receipt.received_at),
        receipt.message_id,
        receipt.method,
        receipt.path,
        serde_json::to_string(&receipt.headers)?,
        &receipt.body[..],
        status.as_str(),
        error,
        raw,
    ])
    .map_err(|e| missing_instance(e, receipt.instance_id))?;
    let event_ids = insert_events(conn, &receipt_id, receipt, events)?;
    super::outbox::insert(
        conn,
        receipt.instance_id,
        Some(&receipt_id),
        to_millis(receipt.received_at),
        notifications,
    )?;
    Ok(ReceiptOutcome::Stored {
        receipt_id,
        event_ids,
    })
}

/// The raw text worth storing: none when it is the body itself, which
/// readers fall back to anyway.
fn distinct_raw<'a>(raw: Option<&'a str>, body: &[u8]) -> Option<&'a str> {
    raw.filter(|raw| raw.as_bytes() != body)
}

/// The accepted receipt this one repeats: same instance and vendor message
/// id, received within the window. Earlier items of the same batch count,
/// as they are already written in this transaction. A zero window, or no
/// message id, never finds one.
fn find_duplicate(conn: &Connection, receipt: &NewReceipt) -> Result<Option<String>> {
    let Some(message_id) = &receipt.message_id else {
        return Ok(None);
    };
    if receipt.dedup_window.is_zero() {
        return Ok(None);
    }
    let window = i64::try_from(receipt.dedup_window.as_millis()).unwrap_or(i64::MAX);
    let since = to_millis(receipt.received_at).saturating_sub(window);
    let found = conn
        .prepare_cached(
            "SELECT id FROM receipts \
             WHERE instance_id = ?1 AND message_id = ?2 AND received_at >= ?3 \
             AND status = 'accepted' \
             ORDER BY received_at LIMIT 1",
        )?
        .query_row(params![receipt.instance_id, message_id, since], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(found)
}

/// Inserts the receipt's events in order; returns their new ids.
fn insert_events(
    conn: &Connection,
    receipt_id: &str,
    receipt: &NewReceipt,
    events: &[NewEvent],
) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(events.len());
    if events.is_empty() {
        return Ok(ids);
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (id, receipt_id, instance_id, element_key, event_type, object_type, \
         object_id, event_date, raw, seq, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (seq, event) in events.iter().enumerate() {
        let (id, created_at) = super::events::new_event_id();
        stmt.execute(params![
            id,
            receipt_id,
            receipt.instance_id,
            receipt.element_key,
            event.event_type.as_str(),
            event.object_type,
            event.object_id,
            to_rfc3339(event.date)?,
            event.raw.get(),
            i64::try_from(seq).unwrap_or(i64::MAX),
            created_at,
        ])?;
        ids.push(id);
    }
    Ok(ids)
}

/// Turns a foreign-key violation on insert into [`StoreError::NoSuchInstance`].
pub(super) fn missing_instance(e: rusqlite::Error, instance_id: i64) -> StoreError {
    match e.sqlite_error() {
        Some(err) if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NoSuchInstance(instance_id)
        }
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::super::event::EventQuery;
    use super::super::super::test_support::{
        failed_receipt, new_instance, receipt, receipt_with_message, T0,
    };
    use super::super::{Backend, SqliteBackend};
    use super::*;

    fn backend_with_instance() -> (SqliteBackend, i64) {
        let mut b = SqliteBackend::open_in_memory().unwrap();
        let id = b.insert_instance(&new_instance("a"), "tok", T0).unwrap().id;
        (b, id)
    }

    fn stored(outcome: &Result<ReceiptOutcome>) -> bool {
        matches!(outcome, Ok(ReceiptOutcome::Stored { .. }))
    }

    #[test]
    fn stores_each_receipt_with_its_events() {
        let (mut b, id) = backend_with_instance();
        let results = b.commit_receipts(&[receipt(id), receipt(id)]);
        let Ok(ReceiptOutcome::Stored {
            receipt_id,
            event_ids,
        }) = &results[0]
        else {
            panic!("{results:?}");
        };
        assert_eq!(event_ids.len(), 1);
        assert!(stored(&results[1]));
        assert_eq!(b.count_events(id).unwrap(), 2);
        let event = b.get_event(&event_ids[0]).unwrap().unwrap();
        assert_eq!(&event.receipt_id, receipt_id);
    }

    #[test]
    fn repeated_message_within_window_is_stored_once() {
        let (mut b, id) = backend_with_instance();
        let first = b
            .commit_receipts(&[receipt_with_message(id, "m-1")])
            .remove(0)
            .unwrap();
        let later = NewReceipt {
            received_at: T0 + Duration::from_secs(3600),
            ..receipt_with_message(id, "m-1")
        };
        let again = b.commit_receipts(&[later]).remove(0).unwrap();
        assert_eq!(
            again,
            ReceiptOutcome::Duplicate {
                receipt_id: first.receipt_id().to_owned()
            }
        );
        assert_eq!(b.count_events(id).unwrap(), 1);
    }

    #[test]
    fn repeated_message_outside_window_is_stored_again() {
        let (mut b, id) = backend_with_instance();
        let window = Duration::from_secs(60);
        let first = NewReceipt {
            dedup_window: window,
            ..receipt_with_message(id, "m-1")
        };
        let later = NewReceipt {
            received_at: T0 + Duration::from_secs(61),
            ..first.clone()
        };
        assert!(stored(&b.commit_receipts(&[first])[0]));
        assert!(stored(&b.commit_receipts(&[later])[0]));
        assert_eq!(b.count_events(id).unwrap(), 2);
    }

    #[test]
    fn repeated_message_within_one_batch_is_stored_once() {
        let (mut b, id) = backend_with_instance();
        let results = b.commit_receipts(&[
            receipt_with_message(id, "m-1"),
            receipt_with_message(id, "m-2"),
            receipt_with_message(id, "m-1"),
        ]);
        assert!(stored(&results[0]) && stored(&results[1]));
        assert_eq!(
            results[2].as_ref().unwrap(),
            &ReceiptOutcome::Duplicate {
                receipt_id: results[0].as_ref().unwrap().receipt_id().to_owned()
            }
        );
        assert_eq!(b.count_events(id).unwrap(), 2);
    }

    #[test]
    fn only_accepted_receipts_make_repeats_duplicates() {
        let (mut b, id) = backend_with_instance();
        let failed = NewReceipt {
            message_id: Some("m-1".into()),
            ..failed_receipt(id)
        };
        let no_window = NewReceipt {
            dedup_window: Duration::ZERO,
            ..receipt_with_message(id, "m-1")
        };
        let results = b.commit_receipts(&[
            failed,
            receipt_with_message(id, "m-1"),
            no_window,
            receipt(id),
            receipt(id),
        ]);
        assert!(results.iter().all(stored), "{results:?}");
    }

    #[test]
    fn failed_receipt_is_kept_with_its_error_and_no_events() {
        let (mut b, id) = backend_with_instance();
        let outcome = b.commit_receipts(&[failed_receipt(id)]).remove(0).unwrap();
        let ReceiptOutcome::Stored {
            receipt_id,
            event_ids,
        } = outcome
        else {
            panic!("{outcome:?}");
        };
        assert!(event_ids.is_empty());
        let kept = b.get_receipt(&receipt_id).unwrap().unwrap();
        assert_eq!(kept.status, ReceiptState::Failed);
        assert_eq!(kept.error.as_deref(), Some("plugin timed out after 500 ms"));
        assert_eq!(kept.body, receipt(id).body.to_vec());
        assert_eq!(b.failed_receipts(id).unwrap(), vec![kept]);
        assert_eq!(b.count_events(id).unwrap(), 0);
    }

    #[test]
    fn an_unknown_instance_fails_alone() {
        let (mut b, id) = backend_with_instance();
        let results = b.commit_receipts(&[receipt(id), receipt(id + 100), receipt(id)]);
        assert!(stored(&results[0]) && stored(&results[2]));
        assert!(matches!(results[1], Err(StoreError::NoSuchInstance(n)) if n == id + 100));
        assert_eq!(b.count_events(id).unwrap(), 2);
        assert_eq!(b.list_events(&EventQuery::default()).unwrap().len(), 2);
    }

    #[test]
    fn deleting_an_instance_deletes_its_receipts_and_events() {
        let (mut b, id) = backend_with_instance();
        let other = b
            .insert_instance(&new_instance("b"), "tok-b", T0)
            .unwrap()
            .id;
        let results = b.commit_receipts(&[receipt(id), failed_receipt(id), receipt(other)]);
        assert!(results.iter().all(stored));
        assert!(b.delete_instance(id).unwrap());
        for result in &results[..2] {
            assert!(b
                .get_receipt(result.as_ref().unwrap().receipt_id())
                .unwrap()
                .is_none());
        }
        assert_eq!(b.count_events(id).unwrap(), 0);
        assert!(b.failed_receipts(id).unwrap().is_empty());
        assert_eq!(b.count_events(other).unwrap(), 1);
    }

    #[test]
    fn raw_text_equal_to_the_body_is_not_stored_twice() {
        let (mut b, id) = backend_with_instance();
        let distinct = receipt(id);
        let echo = NewReceipt {
            outcome: ReceiptStatus::Accepted {
                raw: Some(String::from_utf8(distinct.body.to_vec()).unwrap()),
                events: vec![],
                notifications: vec![],
            },
            ..distinct.clone()
        };
        let results = b.commit_receipts(&[distinct.clone(), echo]);
        let raw = |i: usize| {
            let id = results[i].as_ref().unwrap().receipt_id();
            b.get_receipt(id).unwrap().unwrap().raw
        };
        let ReceiptStatus::Accepted { raw: given, .. } = distinct.outcome else {
            unreachable!()
        };
        assert_eq!(raw(0), given);
        assert_eq!(raw(1), None);
    }

    #[test]
    fn an_unwritable_event_date_fails_only_its_receipt() {
        let (mut b, id) = backend_with_instance();
        let mut bad = receipt(id);
        if let ReceiptStatus::Accepted { events, .. } = &mut bad.outcome {
            events[0].date = time::macros::datetime!(-0001-01-01 0:00 UTC);
        }
        let results = b.commit_receipts(&[receipt(id), bad, receipt(id)]);
        assert!(stored(&results[0]) && stored(&results[2]));
        assert!(
            matches!(results[1], Err(StoreError::InvalidValue(_))),
            "{results:?}"
        );
        assert_eq!(b.count_events(id).unwrap(), 2);
    }

    #[test]
    fn an_empty_batch_writes_nothing() {
        let (mut b, _) = backend_with_instance();
        assert!(b.commit_receipts(&[]).is_empty());
    }
}
