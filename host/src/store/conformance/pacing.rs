//! Fair shares and pacing of claims: a claim takes of each instance at
//! most its room under the per-instance cap (what it has under an
//! unexpired lease counts against it) and what its rate allows now, the
//! pace kept in the database (so concurrent claimers share it exactly,
//! retries included); a claimed notification handed back is due again
//! unattempted.

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::super::test_support::{new_instance, receipt_notifying};
use super::super::{AttemptNext, ClaimRules, Claimed, Rate};
use super::outbox::outcome;
use super::{notifications_of, TestStore};

const LEASE: Duration = Duration::from_secs(30);

/// An instance with `n` due notifications, each from its own receipt.
async fn instance_with(store: &TestStore, name: &str, n: usize) -> i64 {
    let id = store.create_instance(new_instance(name)).await.unwrap().id;
    for i in 0..n {
        store
            .record_receipt(receipt_notifying(id, &format!("{name}-{i:03}")))
            .await
            .unwrap();
    }
    id
}

fn capped(per_instance: u32) -> ClaimRules {
    ClaimRules {
        per_instance,
        rates: HashMap::new(),
    }
}

fn paced(instance: i64, per_second: f64) -> ClaimRules {
    ClaimRules {
        per_instance: u32::MAX,
        rates: HashMap::from([(instance, Rate { per_second })]),
    }
}

/// How many of `claimed` are `instance`'s.
fn of(claimed: &Claimed, instance: i64) -> usize {
    claimed
        .due
        .iter()
        .filter(|n| n.instance_id == instance)
        .count()
}

pub(super) async fn a_claim_takes_at_most_each_instances_room(store: TestStore) {
    let slow = instance_with(&store, "slow", 10).await;
    let healthy = instance_with(&store, "healthy", 3).await;
    let now = OffsetDateTime::now_utc();
    let first = store.claim(now, LEASE, 100, capped(4)).await.unwrap();
    assert_eq!((of(&first, slow), of(&first, healthy)), (4, 3));
    assert_eq!(first.capped, 0);

    // The slow one's four are in flight: none more of it until one is
    // recorded, while new notifications of the healthy one go.
    store
        .record_receipt(receipt_notifying(healthy, "healthy-new"))
        .await
        .unwrap();
    let second = store.claim(now, LEASE, 100, capped(4)).await.unwrap();
    assert_eq!((of(&second, slow), of(&second, healthy)), (0, 1));
    assert_eq!(second.capped, 1);

    let slow_ones: Vec<_> = first.due.iter().filter(|n| n.instance_id == slow).collect();
    let records = slow_ones[..2]
        .iter()
        .map(|n| outcome(n, AttemptNext::Delivered))
        .collect();
    assert_eq!(store.record_attempts(records).await.unwrap().applied, 2);
    let third = store.claim(now, LEASE, 100, capped(4)).await.unwrap();
    assert_eq!(of(&third, slow), 2, "two places freed, two taken");

    // A lease that ran out no longer counts: its notification is due again
    // and the instance's room is whole.
    let later = now + LEASE + Duration::from_secs(1);
    let after = store.claim(later, LEASE, 100, capped(4)).await.unwrap();
    assert_eq!(of(&after, slow), 4);
    // The claim's size bounds the lot.
    let small = store.claim(later, LEASE, 2, capped(10)).await.unwrap();
    assert_eq!(small.due.len(), 2);
}

pub(super) async fn a_paced_instance_gets_its_rate_across_claims_and_retries(store: TestStore) {
    let id = instance_with(&store, "paced", 6).await;
    let other = instance_with(&store, "free", 3).await;
    let t = OffsetDateTime::now_utc();
    // 5 per second: a burst of one, then one every 200 ms.
    let rules = || {
        let mut r = paced(id, 5.0);
        r.per_instance = 100;
        r
    };
    let first = store.claim(t, LEASE, 100, rules()).await.unwrap();
    assert_eq!((of(&first, id), of(&first, other)), (1, 3));
    let again = store.claim(t, LEASE, 100, rules()).await.unwrap();
    assert_eq!(of(&again, id), 0);
    assert_eq!(again.paced, 1);
    let next = again
        .next_paced_at
        .expect("when the paced one may send again");
    let gap = next - t;
    assert!(
        gap >= Duration::from_millis(199) && gap <= Duration::from_millis(201),
        "{gap}"
    );
    assert_eq!(
        of(
            &store
                .claim(t + Duration::from_millis(150), LEASE, 100, rules())
                .await
                .unwrap(),
            id
        ),
        0
    );
    let second = store
        .claim(t + Duration::from_millis(200), LEASE, 100, rules())
        .await
        .unwrap();
    assert_eq!(of(&second, id), 1);

    // A retry is due at once but waits for the pace like the rest.
    let mine = first.due.iter().find(|n| n.instance_id == id).unwrap();
    let retry = outcome(mine, AttemptNext::RetryAt(t));
    assert_eq!(store.record_attempts(vec![retry]).await.unwrap().applied, 1);
    let at = t + Duration::from_millis(300);
    assert_eq!(
        of(&store.claim(at, LEASE, 100, rules()).await.unwrap(), id),
        0
    );
    let turn = store
        .claim(t + Duration::from_millis(400), LEASE, 100, rules())
        .await
        .unwrap();
    assert_eq!(of(&turn, id), 1);

    // Without a rate the same instance is not paced at all: the rest go,
    // the retry among them.
    let free = store
        .claim(t + Duration::from_millis(400), LEASE, 100, capped(100))
        .await
        .unwrap();
    assert_eq!(of(&free, id), 4);
    assert!(free.due.iter().any(|n| n.id == mine.id && n.attempts == 1));
}

pub(super) async fn concurrent_claims_share_one_pace(store: TestStore) {
    let id = instance_with(&store, "shared", 20).await;
    let t = OffsetDateTime::now_utc();
    // 20 per second allows a burst of two: eight claimers at the same
    // moment get two between them.
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim(t, LEASE, 100, paced(id, 20.0)).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for c in claims {
        taken += of(&c.await.unwrap(), id);
    }
    assert_eq!(taken, 2);
}

pub(super) async fn a_handed_back_notification_is_due_again_unattempted(store: TestStore) {
    let id = instance_with(&store, "back", 2).await;
    let now = OffsetDateTime::now_utc();
    let claimed = store.claim(now, LEASE, 10, capped(10)).await.unwrap().due;
    assert_eq!(claimed.len(), 2);
    let due = now + Duration::from_secs(1);
    let back = vec![(claimed[0].id.clone(), claimed[0].lease.clone())];
    assert_eq!(store.hand_back(back.clone(), due).await.unwrap(), 1);
    // Handed back once: its old token holds nothing any more.
    assert_eq!(store.hand_back(back, due).await.unwrap(), 0);
    let stale = store
        .record_attempts(vec![outcome(&claimed[0], AttemptNext::Delivered)])
        .await
        .unwrap();
    assert_eq!(stale.stale, vec![claimed[0].id.clone()]);
    // Not due before its time, not counted as in flight, no attempt made.
    assert!(store
        .claim(now, LEASE, 10, capped(2))
        .await
        .unwrap()
        .due
        .is_empty());
    let stored = notifications_of(&store, id).await;
    let it = stored.iter().find(|n| n.id == claimed[0].id).unwrap();
    assert_eq!((it.attempts, it.total_attempts), (0, 0));
    let again = store.claim(due, LEASE, 10, capped(2)).await.unwrap().due;
    assert_eq!(again.len(), 1, "room for it beside the one still in flight");
    assert_eq!(again[0].id, claimed[0].id);
    assert_eq!(again[0].attempts, 0);
}
