//! Console sessions: kept by digest, shared by every handle on the
//! database, ended by idleness, age, logout and the bound on their number.

use super::super::SessionRules;
use super::TestStore;

/// Generous rules: nothing expires during a test.
const RULES: SessionRules = SessionRules {
    idle_ms: 3_600_000,
    lifetime_ms: 43_200_000,
    max: 256,
    touch_every_ms: 60_000,
};

fn digest(n: u8) -> [u8; 32] {
    [n; 32]
}

pub(super) async fn sessions_open_touch_and_close(store: TestStore) {
    assert!(!store.touch_session(digest(1), RULES).await.unwrap());
    store.open_session(digest(1), RULES).await.unwrap();
    store.open_session(digest(2), RULES).await.unwrap();
    assert!(store.touch_session(digest(1), RULES).await.unwrap());
    assert!(store.touch_session(digest(2), RULES).await.unwrap());
    store.close_session(digest(1)).await.unwrap();
    assert!(!store.touch_session(digest(1), RULES).await.unwrap());
    assert!(
        store.touch_session(digest(2), RULES).await.unwrap(),
        "closing one session leaves the others"
    );
    // Closing what is not there is not an error.
    store.close_session(digest(1)).await.unwrap();
}

pub(super) async fn ended_sessions_are_refused_and_the_oldest_go_first(store: TestStore) {
    // Idle: a session not used for `idle_ms` has ended.
    let idle = SessionRules {
        idle_ms: 150,
        ..RULES
    };
    store.open_session(digest(1), idle).await.unwrap();
    assert!(store.touch_session(digest(1), idle).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!store.touch_session(digest(1), idle).await.unwrap());
    // Being used keeps it alive until its lifetime ends, however busy.
    let busy = SessionRules {
        idle_ms: 200,
        lifetime_ms: 700,
        touch_every_ms: 0,
        ..RULES
    };
    store.open_session(digest(2), busy).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(store.touch_session(digest(2), busy).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(!store.touch_session(digest(2), busy).await.unwrap());
    // Bounded: opening one more than `max` ends the oldest.
    let few = SessionRules { max: 3, ..RULES };
    for n in 10..14 {
        store.open_session(digest(n), few).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!store.touch_session(digest(10), few).await.unwrap());
    for n in 11..14 {
        assert!(store.touch_session(digest(n), few).await.unwrap(), "{n}");
    }
}
