//! The inbound log: entries recorded under their caps with dropped counts,
//! listed merged with webhook receipts (filters, paging, bodies byte-exact),
//! pruned and gone with their instance; failed receipts settled once, also
//! when two writers settle one at the same time, under the same
//! de-duplication rules as at ingress.

use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use super::super::test_support::{
    failed_receipt, new_instance, notification, receipt_with_message,
};
use super::super::{
    InboundCaps, InboundOutcome, InboundQuery, NewInboundEntry, ReceiptOutcome, Settled, Settlement,
};
use super::{notifications_of, TestStore};

const CAPS: InboundCaps = InboundCaps {
    per_instance: 2,
    total: 3,
};

fn rejected(instance_id: i64, status: u16, body: &[u8]) -> NewInboundEntry {
    NewInboundEntry {
        instance_id,
        element_key: "connectwise".into(),
        received_at: OffsetDateTime::now_utc(),
        outcome: InboundOutcome::Rejected,
        status,
        code: Some("unauthorized".into()),
        reason: Some("signature does not match".into()),
        method: "POST".into(),
        path: "/events/connectwise/MQ==".into(),
        headers: vec![("x-content-signature".into(), "[redacted]".into())],
        body: Some(Bytes::copy_from_slice(body)),
        body_bytes: Some(body.len() as u64 + 10),
        receipt_id: None,
    }
}

fn query(limit: u32) -> InboundQuery {
    InboundQuery {
        limit,
        ..InboundQuery::default()
    }
}

fn stored_id(outcome: ReceiptOutcome) -> String {
    match outcome {
        ReceiptOutcome::Stored { receipt_id } => receipt_id,
        other => panic!("expected a stored receipt, got {other:?}"),
    }
}

pub(super) async fn entries_are_capped_and_listed_with_the_receipts(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let b = store.create_instance(new_instance("b")).await.unwrap();
    let failed = stored_id(store.record_receipt(failed_receipt(a.id)).await.unwrap());
    let binary = [0xff, 0x00, 0xfe, b'{'];
    let mut entries = vec![
        rejected(a.id, 401, &binary),
        rejected(a.id, 400, b"{}"),
        rejected(a.id, 401, b"third"),
        rejected(b.id, 409, b""),
        rejected(b.id, 401, b"over the total"),
        rejected(9_999, 401, b"no such instance"),
    ];
    // Arrived in this order, a millisecond apart, after the receipt: ids
    // follow arrival times.
    let start = OffsetDateTime::now_utc() + Duration::from_millis(5);
    for (i, e) in entries.iter_mut().enumerate() {
        e.received_at = start + Duration::from_millis(i as u64);
    }
    let written = store
        .record_inbound(entries, vec![(b.id, 5)], CAPS)
        .await
        .unwrap();
    // a: 2 stored, 1 over its cap; b: 1 stored, 1 over the total, 5 earlier;
    // the missing instance's entry is not stored.
    assert_eq!(written.stored, 3);
    assert_eq!(written.dropped, 1 + 1 + 5 + 1);
    let dropped = store.inbound_dropped(None).await.unwrap();
    let counts: Vec<(i64, u64)> = dropped.iter().map(|d| (d.instance_id, d.dropped)).collect();
    assert_eq!(counts, [(a.id, 1), (b.id, 6)]);

    let all = store.list_inbound(query(100)).await.unwrap();
    let outcomes: Vec<&str> = all.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["rejected", "rejected", "rejected", "failed"]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(
        all.iter().all(|e| e.body.is_none()),
        "listings leave bodies out"
    );
    let receipt = &all[3];
    assert_eq!(receipt.id, failed);
    assert_eq!(receipt.status, None);
    assert_eq!(
        receipt.reason.as_deref(),
        Some("plugin timed out after 500 ms")
    );

    let filtered = |q: InboundQuery| {
        let store = &store;
        async move { store.list_inbound(q).await.unwrap() }
    };
    let of_a = filtered(InboundQuery {
        instance_id: Some(a.id),
        outcome: Some(InboundOutcome::Rejected),
        ..query(100)
    })
    .await;
    assert_eq!(of_a.len(), 2);
    let unauthorized = filtered(InboundQuery {
        status: Some(401),
        ..query(100)
    })
    .await;
    assert_eq!(unauthorized.len(), 1);
    assert_eq!(unauthorized[0].instance_id, a.id);
    let failed_only = filtered(InboundQuery {
        outcome: Some(InboundOutcome::Failed),
        ..query(100)
    })
    .await;
    assert_eq!(failed_only.len(), 1);
    let later = filtered(InboundQuery {
        since: Some(start + Duration::from_secs(60)),
        ..query(100)
    })
    .await;
    assert!(later.is_empty());

    // Paging by cursor.
    let first = filtered(query(3)).await;
    let rest = filtered(InboundQuery {
        before: Some(first[2].id.clone()),
        ..query(3)
    })
    .await;
    let paged: Vec<String> = first.iter().chain(&rest).map(|e| e.id.clone()).collect();
    let whole: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
    assert_eq!(paged, whole);

    // One entry: its body byte-exact; a receipt's too.
    let oldest_rejected = &all[2];
    let one = store
        .get_inbound(&oldest_rejected.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.body.as_deref(), Some(&binary[..]));
    assert_eq!(one.body_bytes, Some(binary.len() as u64 + 10));
    assert_eq!(one.status, Some(401));
    let one = store.get_inbound(&failed).await.unwrap().unwrap();
    assert_eq!(one.body, Some(failed_receipt(a.id).body));
    assert!(store.get_inbound("nope").await.unwrap().is_none());
}

pub(super) async fn old_entries_are_pruned_and_go_with_their_instance(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let b = store.create_instance(new_instance("b")).await.unwrap();
    let caps = InboundCaps {
        per_instance: 1,
        total: 100,
    };
    let entries = vec![
        rejected(a.id, 401, b"x"),
        rejected(a.id, 401, b"y"),
        rejected(b.id, 401, b"z"),
    ];
    store.record_inbound(entries, vec![], caps).await.unwrap();
    assert!(store.delete_instance(a.id).await.unwrap());
    let left = store.list_inbound(query(100)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].instance_id, b.id);
    assert!(store.inbound_dropped(None).await.unwrap().is_empty());

    let receipt = store.record_receipt(failed_receipt(b.id)).await.unwrap();
    let pruned = store
        .prune_inbound(OffsetDateTime::now_utc() + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let left = store.list_inbound(query(100)).await.unwrap();
    let ids: Vec<&str> = left.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [receipt.receipt_id()],
        "receipts are not the log's to prune"
    );
}

fn accepted(message_id: Option<&str>, event: &str) -> Settlement {
    Settlement::Accepted {
        message_id: message_id.map(str::to_owned),
        dedup_window: Duration::from_secs(86_400),
        notifications: vec![notification(event)],
    }
}

pub(super) async fn a_failed_receipt_is_settled_once(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let first = stored_id(store.record_receipt(failed_receipt(a.id)).await.unwrap());
    let second = stored_id(store.record_receipt(failed_receipt(a.id)).await.unwrap());
    let failed = store.failed_receipts(a.id, "", 10).await.unwrap();
    let ids: Vec<&str> = failed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert_eq!(failed[0].headers, failed_receipt(a.id).headers);
    assert_eq!(
        store.failed_receipts(a.id, &first, 10).await.unwrap().len(),
        1
    );

    let event = uuid::Uuid::now_v7().to_string();
    let settled = store
        .settle_receipt(&first, accepted(None, &event))
        .await
        .unwrap();
    assert_eq!(
        settled,
        Settled::Accepted {
            event_ids: vec![event.clone()]
        }
    );
    let again = store
        .settle_receipt(&first, accepted(None, "another"))
        .await
        .unwrap();
    assert_eq!(again, Settled::NotFailed);
    let notifications = notifications_of(&store, a.id).await;
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0].id, event);
    let entry = store.get_inbound(&first).await.unwrap().unwrap();
    assert_eq!(entry.outcome, InboundOutcome::Accepted);
    assert_eq!(entry.event_ids, [event]);
    assert_eq!(entry.reason, None);
    assert!(store
        .get_receipt(&first)
        .await
        .unwrap()
        .unwrap()
        .error
        .is_none());

    let still = store
        .settle_receipt(
            &second,
            Settlement::Failed {
                error: "trapped again".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(still, Settled::StillFailed);
    let receipt = store.get_receipt(&second).await.unwrap().unwrap();
    assert_eq!(receipt.error.as_deref(), Some("trapped again"));
    assert_eq!(
        store
            .settle_receipt("missing", accepted(None, "x"))
            .await
            .unwrap(),
        Settled::NotFailed
    );
}

pub(super) async fn concurrent_settlements_write_once(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    for _ in 0..5 {
        let id = stored_id(store.record_receipt(failed_receipt(a.id)).await.unwrap());
        let (one, two) = tokio::join!(
            store.settle_receipt(&id, accepted(None, &uuid::Uuid::now_v7().to_string())),
            store.settle_receipt(&id, accepted(None, &uuid::Uuid::now_v7().to_string())),
        );
        let results = [one.unwrap(), two.unwrap()];
        let won = results
            .iter()
            .filter(|r| matches!(r, Settled::Accepted { .. }))
            .count();
        assert_eq!(won, 1, "{results:?}");
        assert!(results.contains(&Settled::NotFailed));
    }
    assert_eq!(notifications_of(&store, a.id).await.len(), 5);
}

pub(super) async fn a_settled_repeat_of_an_accepted_message_is_a_duplicate(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let original = stored_id(
        store
            .record_receipt(receipt_with_message(a.id, "m-1"))
            .await
            .unwrap(),
    );
    let failed = stored_id(store.record_receipt(failed_receipt(a.id)).await.unwrap());
    let settled = store
        .settle_receipt(&failed, accepted(Some("m-1"), "dup-event"))
        .await
        .unwrap();
    assert_eq!(settled, Settled::Duplicate { of: original });
    assert_eq!(notifications_of(&store, a.id).await.len(), 1);
    let entry = store.get_inbound(&failed).await.unwrap().unwrap();
    assert_eq!(entry.outcome, InboundOutcome::Accepted);
    assert!(entry.reason.unwrap().contains("duplicate of receipt"));

    // A new message id takes the key: a later repeat of it is refused.
    let other = stored_id(store.record_receipt(failed_receipt(a.id)).await.unwrap());
    let settled = store
        .settle_receipt(&other, accepted(Some("m-2"), "fresh"))
        .await
        .unwrap();
    assert!(matches!(settled, Settled::Accepted { .. }));
    let repeat = store
        .record_receipt(receipt_with_message(a.id, "m-2"))
        .await
        .unwrap();
    assert_eq!(repeat, ReceiptOutcome::Duplicate { receipt_id: other });
}
