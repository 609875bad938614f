//! Searching the event log: by the fields of the events a notification
//! carries (all on one event), element, instance, status and time, with
//! the cursor.

use std::time::Duration;

use time::OffsetDateTime;

use super::super::test_support::{new_instance, notification, receipt};
use super::super::{
    AttemptNext, AttemptRecord, DeliveryState, EventKey, NewInstance, NotificationQuery,
    ReceiptStatus, REDELIVER_CHUNK,
};
use super::TestStore;

fn key(event_type: &str, object_type: &str, object_id: &str) -> EventKey {
    EventKey {
        event_type: event_type.into(),
        object_type: object_type.into(),
        object_id: object_id.into(),
    }
}

/// Stores a notification received at `at` (its id a UUIDv7 of that time,
/// as the accept step makes it) carrying `events`; returns its id.
async fn notify(
    store: &TestStore,
    instance: i64,
    at: OffsetDateTime,
    events: Vec<EventKey>,
) -> String {
    let nanos = at.unix_timestamp_nanos();
    let id = if OffsetDateTime::now_utc() - at < Duration::from_secs(60) {
        // Made now: in the order of the calls, as the accept step's are.
        uuid::Uuid::now_v7()
    } else {
        uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(nanos / 1_000_000_000).unwrap(),
            u32::try_from(nanos % 1_000_000_000).unwrap(),
        ))
    }
    .to_string();
    let mut r = receipt(instance);
    r.received_at = at;
    let mut n = notification(&id);
    n.event_count = events.len() as u32;
    n.events = events;
    r.outcome = ReceiptStatus::Accepted {
        notifications: vec![n],
    };
    store.record_receipt(r).await.unwrap();
    id
}

async fn ids(store: &TestStore, q: NotificationQuery) -> Vec<String> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_notifications(NotificationQuery {
                after: after.clone(),
                limit: 2,
                ..q.clone()
            })
            .await
            .unwrap();
        found.extend(page.iter().map(|n| n.id.clone()));
        if page.len() < 2 {
            return found;
        }
        after = page.last().map(|n| n.id.clone());
    }
}

pub(super) async fn the_event_log_is_searched_by_what_events_are_about(store: TestStore) {
    let cw = store.create_instance(new_instance("a")).await.unwrap().id;
    let gh = store
        .create_instance(NewInstance {
            element_key: "github".into(),
            ..new_instance("b")
        })
        .await
        .unwrap()
        .id;
    let now = OffsetDateTime::now_utc();
    let old = now - Duration::from_secs(2 * 86_400);
    let t1 = notify(&store, cw, old, vec![key("CREATED", "ticket", "42")]).await;
    // Two events in one notification: a ticket created, a contact updated.
    let t2 = notify(
        &store,
        cw,
        now,
        vec![
            key("CREATED", "ticket", "43"),
            key("UPDATED", "contact", "7"),
        ],
    )
    .await;
    let t3 = notify(&store, cw, now, vec![key("UPDATED", "ticket", "42")]).await;
    let g1 = notify(&store, gh, now, vec![key("DELETED", "issue", "42")]).await;
    let all = NotificationQuery::default();

    let by_object = ids(
        &store,
        NotificationQuery {
            object_id: Some("42".into()),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(
        by_object,
        [g1.clone(), t3.clone(), t1.clone()],
        "newest first, paged"
    );
    let typed = ids(
        &store,
        NotificationQuery {
            object_id: Some("42".into()),
            object_type: Some("ticket".into()),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(typed, [t3.clone(), t1.clone()]);
    // Every field must hold for one and the same event.
    let same_event = ids(
        &store,
        NotificationQuery {
            object_type: Some("contact".into()),
            event_type: Some("CREATED".into()),
            ..all.clone()
        },
    )
    .await;
    assert!(same_event.is_empty(), "{same_event:?}");
    let updated = ids(
        &store,
        NotificationQuery {
            event_type: Some("UPDATED".into()),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(updated, [t3.clone(), t2.clone()]);
    let of_github = ids(
        &store,
        NotificationQuery {
            element_key: Some("github".into()),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(of_github, std::slice::from_ref(&g1));
    let of_instance = ids(
        &store,
        NotificationQuery {
            instance_id: Some(cw),
            object_id: Some("42".into()),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(of_instance, [t3.clone(), t1.clone()]);
    let recent = ids(
        &store,
        NotificationQuery {
            since: Some(now - Duration::from_secs(3600)),
            object_type: Some("ticket".into()),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(recent, [t3.clone(), t2.clone()]);
    let earlier = ids(
        &store,
        NotificationQuery {
            until: Some(now - Duration::from_secs(86_400)),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(earlier, std::slice::from_ref(&t1));
    let nothing = ids(
        &store,
        NotificationQuery {
            object_id: Some("999".into()),
            ..all
        },
    )
    .await;
    assert!(nothing.is_empty());
}

pub(super) async fn a_redelivery_by_search_queues_every_match_in_chunks(store: TestStore) {
    let instance = store.create_instance(new_instance("a")).await.unwrap().id;
    let count = REDELIVER_CHUNK as usize * 2 + 17;
    let notifications = (0..count + 3)
        .map(|i| {
            let mut n = notification(&uuid::Uuid::now_v7().to_string());
            n.events = vec![key("UPDATED", "ticket", if i < count { "7" } else { "8" })];
            n
        })
        .collect();
    let mut r = receipt(instance);
    r.outcome = ReceiptStatus::Accepted { notifications };
    store.record_receipt(r).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let claimed = store
        .claim_due(now, Duration::from_secs(30), 5_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), count + 3);
    let dead = claimed
        .iter()
        .map(|n| AttemptRecord {
            notification_id: n.id.clone(),
            lease: n.lease.clone(),
            attempted_at: now,
            status_code: Some(500),
            error: None,
            latency_ms: 1,
            response_body: bytes::Bytes::new(),
            next: AttemptNext::Dead,
        })
        .collect();
    store.record_attempts(dead).await.unwrap();

    let dead_of_7 = NotificationQuery {
        instance_id: Some(instance),
        state: Some(DeliveryState::Dead),
        object_id: Some("7".into()),
        ..NotificationQuery::default()
    };
    let queued = store.redeliver_matching(dead_of_7.clone()).await.unwrap();
    assert_eq!(queued, count as u64, "every match, across chunks, once");
    let due = store
        .claim_due(OffsetDateTime::now_utc(), Duration::from_secs(30), 5_000)
        .await
        .unwrap();
    assert_eq!(due.len(), count, "queued for a new delivery");
    assert!(due.iter().all(|n| n.attempts == 0), "a fresh cycle");
    let still_dead = store
        .list_notifications(NotificationQuery {
            state: Some(DeliveryState::Dead),
            ..NotificationQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        still_dead.len(),
        3,
        "what did not match stays dead-lettered"
    );
    assert_eq!(store.redeliver_matching(dead_of_7).await.unwrap(), 0);
}
