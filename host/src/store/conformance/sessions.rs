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
    use std::time::{Duration, Instant};
    // The margins are wide so that a slow write on a busy machine cannot
    // make a live session look idle.
    // Idle: a session not used for `idle_ms` has ended.
    let idle = SessionRules {
        idle_ms: 1_000,
        ..RULES
    };
    store.open_session(digest(1), idle).await.unwrap();
    assert!(store.touch_session(digest(1), idle).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(!store.touch_session(digest(1), idle).await.unwrap());
    // Being used keeps it alive past `idle_ms`, but not past its lifetime.
    let busy = SessionRules {
        idle_ms: 1_000,
        lifetime_ms: 1_800,
        touch_every_ms: 0,
        ..RULES
    };
    let opened = Instant::now();
    store.open_session(digest(2), busy).await.unwrap();
    while opened.elapsed() < Duration::from_millis(1_200) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let touched_at = opened.elapsed();
        let live = store.touch_session(digest(2), busy).await.unwrap();
        if touched_at < Duration::from_millis(1_300) {
            assert!(
                live,
                "a session in use ended {touched_at:?} after it opened"
            );
        }
    }
    // Still in use (touched every 150 ms), so only its lifetime can end it.
    while opened.elapsed() < Duration::from_millis(1_900) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        store.touch_session(digest(2), busy).await.unwrap();
    }
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
