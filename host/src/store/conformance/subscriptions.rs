//! Instances' vendor subscriptions: recorded and replaced without moving
//! the instance's version, listed, refused for a missing instance, and
//! gone with the instance.

use time::OffsetDateTime;

use super::super::test_support::new_instance;
use super::super::{SubscriptionStatus, VendorSubscription};
use super::TestStore;

fn subscription(status: SubscriptionStatus, remembered: Option<&str>) -> VendorSubscription {
    VendorSubscription {
        status,
        message: (status == SubscriptionStatus::Failed).then(|| "vendor said 400".to_owned()),
        remembered: remembered.map(str::to_owned),
        callback_url: remembered.map(|_| "https://hooks.example.com/events/x/MQ==".to_owned()),
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

pub(super) async fn a_subscription_is_recorded_beside_the_instance(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let b = store.create_instance(new_instance("b")).await.unwrap();
    assert_eq!(store.subscription(a.id).await.unwrap(), None);

    let subscribed = subscription(SubscriptionStatus::Subscribed, Some(r#"{"ids":[1,2]}"#));
    assert!(store
        .put_subscription(a.id, subscribed.clone())
        .await
        .unwrap());
    let read = store.subscription(a.id).await.unwrap().unwrap();
    assert_eq!(read.status, SubscriptionStatus::Subscribed);
    assert_eq!(read.remembered, subscribed.remembered);
    assert_eq!(read.callback_url, subscribed.callback_url);
    assert_eq!(read.message, None);
    assert!(
        read.updated_at > OffsetDateTime::UNIX_EPOCH,
        "stamped when recorded"
    );

    // Replaced whole; the instance's version stays.
    let failed = subscription(SubscriptionStatus::Failed, None);
    assert!(store.put_subscription(a.id, failed).await.unwrap());
    let read = store.subscription(a.id).await.unwrap().unwrap();
    assert_eq!(read.status, SubscriptionStatus::Failed);
    assert_eq!(read.message.as_deref(), Some("vendor said 400"));
    assert_eq!((read.remembered, read.callback_url), (None, None));
    assert_eq!(store.get_instance(a.id).await.unwrap().unwrap().version, 1);

    let unsupported = subscription(SubscriptionStatus::Unsupported, None);
    assert!(store.put_subscription(b.id, unsupported).await.unwrap());
    let all = store.subscriptions().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[&a.id].status, SubscriptionStatus::Failed);
    assert_eq!(all[&b.id].status, SubscriptionStatus::Unsupported);
}

pub(super) async fn a_subscription_goes_with_its_instance(store: TestStore) {
    let a = store.create_instance(new_instance("a")).await.unwrap();
    let not_subscribed = subscription(SubscriptionStatus::NotSubscribed, None);
    assert!(store
        .put_subscription(a.id, not_subscribed.clone())
        .await
        .unwrap());
    assert!(store.delete_instance(a.id).await.unwrap());
    assert_eq!(store.subscription(a.id).await.unwrap(), None);
    assert!(store.subscriptions().await.unwrap().is_empty());
    // Nothing is recorded for an instance that does not exist.
    assert!(!store.put_subscription(a.id, not_subscribed).await.unwrap());
    assert_eq!(store.subscription(a.id).await.unwrap(), None);
}
