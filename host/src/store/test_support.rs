//! Builders shared by the store's unit tests.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;

use super::instance::NewInstance;
use super::outbox::{NewNotification, NotificationSource};
use super::receipt::{NewReceipt, ReceiptStatus};

/// A moment all fixtures are received at unless a test moves it.
pub(super) const T0: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

/// A ConnectWise instance with events on.
pub(super) fn new_instance(name: &str) -> NewInstance {
    NewInstance {
        element_key: "connectwise".into(),
        name: name.into(),
        tags: vec!["test".into()],
        configuration: json!({"event.notification.enabled": "true"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        events_enabled: true,
    }
}

/// The ids of two instances made in `store`: one kept, one already deleted
/// (receipts for it fail as not found).
pub(super) async fn kept_and_deleted_instances(store: &super::Store) -> (i64, i64) {
    let kept = store
        .create_instance(new_instance("kept"))
        .await
        .unwrap()
        .id;
    let gone = store
        .create_instance(new_instance("gone"))
        .await
        .unwrap()
        .id;
    assert!(store.delete_instance(gone).await.unwrap());
    (kept, gone)
}

/// An accepted ConnectWise callback (about 1.5 KB of body) carrying one
/// notification (with a fresh id) and no message id.
pub(super) fn receipt(instance_id: i64) -> NewReceipt {
    let summary = "x".repeat(1400);
    let entity = json!({"id": 42, "summary": summary});
    let body =
        json!({"Action": "updated", "Type": "ticket", "ID": 42, "Entity": entity.to_string()});
    NewReceipt {
        instance_id,
        element_key: "connectwise".into(),
        received_at: T0,
        message_id: None,
        dedup_window: Duration::from_secs(86_400),
        method: "POST".into(),
        path: "/events/connectwise/MQ==".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-content-signature".into(), "c2lnbmF0dXJl".into()),
        ],
        body: Bytes::from(body.to_string()),
        outcome: ReceiptStatus::Accepted {
            notifications: vec![notification(&uuid::Uuid::now_v7().to_string())],
        },
    }
}

/// The same receipt without notifications (its events were all filtered
/// out): settled as soon as it is stored.
pub(super) fn bare_receipt(instance_id: i64) -> NewReceipt {
    let mut r = receipt(instance_id);
    if let ReceiptStatus::Accepted { notifications, .. } = &mut r.outcome {
        notifications.clear();
    }
    r
}

/// The same receipt carrying a vendor message id.
pub(super) fn receipt_with_message(instance_id: i64, message_id: &str) -> NewReceipt {
    NewReceipt {
        message_id: Some(message_id.into()),
        ..receipt(instance_id)
    }
}

/// A receipt the plugin failed on.
pub(super) fn failed_receipt(instance_id: i64) -> NewReceipt {
    NewReceipt {
        outcome: ReceiptStatus::Failed {
            error: "plugin timed out after 500 ms".into(),
        },
        ..receipt(instance_id)
    }
}

/// A notification with this id carrying one event.
pub(super) fn notification(id: &str) -> NewNotification {
    NewNotification {
        id: id.into(),
        source: NotificationSource::Webhook,
        content_type: "application/json".into(),
        body: Bytes::from(format!(r#"{{"message":{{"eventId":"{id}"}}}}"#)),
        event_count: 1,
        events: vec![super::outbox::EventKey {
            event_type: "UPDATED".into(),
            object_type: "ticket".into(),
            object_id: "42".into(),
        }],
        filtered: false,
        order_key: None,
    }
}

/// A receipt carrying one notification with this id.
pub(super) fn receipt_notifying(instance_id: i64, id: &str) -> NewReceipt {
    let mut r = receipt(instance_id);
    if let ReceiptStatus::Accepted { notifications, .. } = &mut r.outcome {
        *notifications = vec![notification(id)];
    }
    r
}
