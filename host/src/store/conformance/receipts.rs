//! Receipts: stored with their notifications, de-duplicated by a unique
//! key on the vendor message id within its window, one failure alone.

use std::collections::HashSet;
use std::time::Duration;

use super::super::test_support::{
    bare_receipt, failed_receipt, new_instance, receipt, receipt_with_message, T0,
};
use super::super::{NewReceipt, ReceiptOutcome, ReceiptStatus};
use super::{notifications_of, TestStore};

fn stored(outcome: &super::super::Result<ReceiptOutcome>) -> bool {
    matches!(outcome, Ok(ReceiptOutcome::Stored { .. }))
}

pub(super) async fn each_receipt_is_stored_with_its_notifications(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let given = receipt(id);
    let ReceiptStatus::Accepted { notifications, .. } = &given.outcome else {
        unreachable!()
    };
    let sent = notifications[0].clone();
    let first = store.record_receipt(given).await.unwrap();
    let second = store.record_receipt(receipt(id)).await.unwrap();
    assert!(matches!(first, ReceiptOutcome::Stored { .. }));
    assert_ne!(first.receipt_id(), second.receipt_id());
    let kept = store.get_notification(&sent.id).await.unwrap().unwrap();
    assert_eq!(kept.receipt_id.as_deref(), Some(first.receipt_id()));
    assert_eq!(kept.instance_id, id);
    assert_eq!(kept.body, sent.body);
    assert_eq!(kept.event_count, 1);
    assert_eq!(notifications_of(&store, id).await.len(), 2);
    assert_eq!(store.stats().receipts_stored, 2);
}

pub(super) async fn a_repeat_within_the_window_is_stored_once(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let first = store
        .record_receipt(receipt_with_message(id, "m-1"))
        .await
        .unwrap();
    let later = NewReceipt {
        received_at: T0 + Duration::from_secs(3600),
        ..receipt_with_message(id, "m-1")
    };
    let again = store.record_receipt(later).await.unwrap();
    assert_eq!(
        again,
        ReceiptOutcome::Duplicate {
            receipt_id: first.receipt_id().to_owned()
        }
    );
    // Another instance's message with the same id is its own.
    let other = store.create_instance(new_instance("b")).await.unwrap().id;
    let theirs = store
        .record_receipt(receipt_with_message(other, "m-1"))
        .await
        .unwrap();
    assert!(matches!(theirs, ReceiptOutcome::Stored { .. }));
    assert_eq!(notifications_of(&store, id).await.len(), 1);
    let stats = store.stats();
    assert_eq!((stats.receipts_stored, stats.receipts_duplicate), (2, 1));
}

pub(super) async fn a_repeat_after_the_window_takes_the_key_over(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    // Each a new request (with notifications of its own) repeating m-1.
    let at = |seconds: u64| NewReceipt {
        dedup_window: Duration::from_secs(60),
        received_at: T0 + Duration::from_secs(seconds),
        ..receipt_with_message(id, "m-1")
    };
    assert!(stored(&store.record_receipt(at(0)).await));
    let second = store.record_receipt(at(61)).await.unwrap();
    assert!(matches!(second, ReceiptOutcome::Stored { .. }));
    let again = store.record_receipt(at(90)).await.unwrap();
    assert_eq!(
        again.receipt_id(),
        second.receipt_id(),
        "within the new window"
    );
    assert_eq!(notifications_of(&store, id).await.len(), 2);
}

pub(super) async fn only_accepted_receipts_with_a_window_deduplicate(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let failed = NewReceipt {
        message_id: Some("m-1".into()),
        ..failed_receipt(id)
    };
    let no_window = || NewReceipt {
        dedup_window: Duration::ZERO,
        ..receipt_with_message(id, "m-1")
    };
    for r in [
        failed,
        receipt_with_message(id, "m-1"),
        no_window(),
        no_window(),
        receipt(id),
        receipt(id),
        bare_receipt(id),
    ] {
        let outcome = store.record_receipt(r).await;
        assert!(stored(&outcome), "{outcome:?}");
    }
    assert_eq!(notifications_of(&store, id).await.len(), 5);
}

pub(super) async fn concurrent_repeats_are_stored_once(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = (*store).clone();
            // Half repeat one message; the other half are all distinct.
            let message = if i % 2 == 0 {
                "same".to_string()
            } else {
                format!("m-{i}")
            };
            tokio::spawn(async move {
                store
                    .record_receipt(receipt_with_message(id, &message))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut duplicates = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        if matches!(outcome, ReceiptOutcome::Duplicate { .. }) {
            duplicates += 1;
        }
        ids.insert(outcome.receipt_id().to_owned());
    }
    assert_eq!(ids.len(), 101, "one receipt for `same`, one for each other");
    assert_eq!(duplicates, 99);
    assert_eq!(notifications_of(&store, id).await.len(), 101);
    let stats = store.stats();
    assert_eq!((stats.receipts_stored, stats.receipts_duplicate), (101, 99));
}

pub(super) async fn a_missing_instance_fails_alone(store: TestStore) {
    let kept = store.create_instance(new_instance("kept")).await.unwrap();
    let gone = store.create_instance(new_instance("gone")).await.unwrap();
    store.record_receipt(receipt(gone.id)).await.unwrap();
    assert!(store.delete_instance(gone.id).await.unwrap());

    let (a, b, c) = tokio::join!(
        store.record_receipt(receipt(kept.id)),
        store.record_receipt(receipt(gone.id)),
        store.record_receipt(receipt(kept.id)),
    );
    assert!(a.is_ok() && c.is_ok());
    assert!(matches!(b, Err(ref e) if e.is_not_found()), "{b:?}");
    assert_eq!(notifications_of(&store, kept.id).await.len(), 2);
    assert!(notifications_of(&store, gone.id).await.is_empty());
    assert_eq!(store.stats().receipts_failed, 1);
}

pub(super) async fn bodies_read_back_byte_exact(store: TestStore) {
    let id = store.create_instance(new_instance("a")).await.unwrap().id;
    // JSON that parses only as text (a lone surrogate escape, a number no
    // machine type holds, nesting past any parser's depth limit), an
    // escaped NUL, and bytes that are not UTF-8 at all.
    let deep = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
    let bodies: Vec<Vec<u8>> = vec![
        br#"{"message":{"raw":{"a":"\ud800"}}}"#.to_vec(),
        br#"{"message":{"raw":{"n":1e400,"m":-123456789012345678901234567890}}}"#.to_vec(),
        br#"{"message":{"raw":"\u0000"}}"#.to_vec(),
        format!(r#"{{"message":{{"raw":{deep}}}}}"#).into_bytes(),
        vec![0xff, 0xfe, 0x00, b'{', 0xc3],
    ];
    let mut sent = Vec::new();
    for body in bodies {
        let mut r = receipt(id);
        r.body = body.clone().into();
        if let ReceiptStatus::Accepted { notifications } = &mut r.outcome {
            notifications[0].body = body.into();
            sent.push(notifications[0].clone());
        }
        store.record_receipt(r).await.unwrap();
    }
    let listed = notifications_of(&store, id).await;
    assert_eq!(listed.len(), sent.len());
    for n in &sent {
        let got = store.get_notification(&n.id).await.unwrap().unwrap();
        assert_eq!(got.body, n.body, "shown as stored");
        let in_list = listed.iter().find(|l| l.id == n.id).unwrap();
        assert_eq!(in_list.body, n.body, "listed as stored");
    }
}
