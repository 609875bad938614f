//! The backend conformance suite: the store's behaviour, written once
//! against [`Store`] and run for every backend.
//!
//! [`conformance_suite!`] instantiates every test for one backend given an
//! `async fn() -> TestStore` that opens a fresh, empty store of that
//! backend; the instantiations (SQLite in a temporary file, PostgreSQL in
//! a fresh database of the test process's throwaway cluster) are at the
//! bottom of this file.

mod filters;
mod inbound;
mod instances;
mod ordering;
mod outbox;
mod pacing;
mod polls;
mod prune;
mod receipts;
mod search;
mod sessions;
mod subscriptions;

use std::any::Any;
use std::ops::Deref;

use super::{NotificationQuery, Store, StoredNotification};

/// A fresh store for one test, with whatever must live as long as it (a
/// temporary folder, a throwaway database).
pub(crate) struct TestStore {
    store: Store,
    _keep: Box<dyn Any + Send>,
}

impl TestStore {
    /// Wraps `store`, keeping `keep` alive until the test ends.
    pub(crate) fn new(store: Store, keep: impl Any + Send) -> Self {
        Self {
            store,
            _keep: Box::new(keep),
        }
    }
}

impl Deref for TestStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

/// Every notification of an instance, newest first.
pub(crate) async fn notifications_of(store: &Store, instance_id: i64) -> Vec<StoredNotification> {
    store
        .list_notifications(NotificationQuery {
            instance_id: Some(instance_id),
            limit: 100_000,
            ..NotificationQuery::default()
        })
        .await
        .unwrap()
}

/// Instantiates the suite as module `$name`, each test opening its store
/// with `$open` (an `async fn() -> TestStore`).
macro_rules! conformance_suite {
    ($name:ident, $open:path) => {
        mod $name {
            conformance_suite!(@tests $open;
                instances::crud,
                instances::tokens_are_unique,
                instances::versioned_updates,
                instances::a_conflicting_update_writes_nothing,
                instances::pausing_holds_the_instance_only_and_resuming_releases,
                instances::deleting_removes_what_the_instance_owns,
                receipts::each_receipt_is_stored_with_its_notifications,
                receipts::a_repeat_within_the_window_is_stored_once,
                receipts::a_repeat_after_the_window_takes_the_key_over,
                receipts::only_accepted_receipts_with_a_window_deduplicate,
                receipts::concurrent_repeats_are_stored_once,
                receipts::a_missing_instance_fails_alone,
                receipts::bodies_read_back_byte_exact,
                outbox::a_due_notification_is_claimed_once,
                outbox::an_expired_lease_is_reclaimed_and_the_stale_outcome_rejected,
                outbox::an_outcome_applies_once,
                outbox::a_redelivery_takes_over_from_the_claimant,
                outbox::outcomes_move_notifications_through_their_states,
                outbox::the_event_log_filters_and_pages,
                search::the_event_log_is_searched_by_what_events_are_about,
                search::a_redelivery_by_search_queues_every_match_in_chunks,
                filters::a_filtered_notification_is_settled_until_redelivered,
                filters::filtered_notifications_are_pruned_like_delivered_ones,
                ordering::one_notification_per_object_at_a_time_in_order,
                ordering::a_redelivery_goes_to_the_end_of_its_objects_line,
                ordering::a_pause_keeps_the_line,
                ordering::ordered_notifications_stored_while_the_head_settles_all_go,
                ordering::one_batch_of_ordered_unordered_and_stale_outcomes_applies_each_once,
                pacing::a_claim_takes_at_most_each_instances_room,
                pacing::a_paced_instance_gets_its_rate_across_claims_and_retries,
                pacing::concurrent_claims_share_one_pace,
                pacing::a_handed_back_notification_is_due_again_unattempted,
                polls::a_page_stores_its_notifications_and_checkpoint,
                polls::checkpoints_only_move_forward,
                polls::a_failing_page_stores_nothing,
                prune::pruning_deletes_only_what_is_old_and_settled,
                sessions::sessions_open_touch_and_close,
                sessions::ended_sessions_are_refused_and_the_oldest_go_first,
                subscriptions::a_subscription_is_recorded_beside_the_instance,
                subscriptions::a_subscription_goes_with_its_instance,
                inbound::entries_are_capped_and_listed_with_the_receipts,
                inbound::old_entries_are_pruned_and_go_with_their_instance,
                inbound::a_failed_receipt_is_settled_once,
                inbound::concurrent_settlements_write_once,
                inbound::a_settled_repeat_of_an_accepted_message_is_a_duplicate,
            );
        }
    };
    (@tests $open:path; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                $crate::store::conformance::$module::$test($open().await).await;
            }
        )*
    };
}

/// A SQLite store in a file of its own temporary folder.
async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let config = super::StoreConfig::Sqlite {
        path: dir.path().join("data/store.db"),
    };
    TestStore::new(Store::open(&config).await.unwrap(), dir)
}

conformance_suite!(sqlite_file, super::sqlite);

/// A PostgreSQL store in a fresh database of this test process's throwaway
/// cluster (started on first use; the tests fail if PostgreSQL is not
/// installed).
pub(crate) async fn postgres() -> TestStore {
    let url = fresh_database().await;
    let config = super::StoreConfig::Postgres { url };
    TestStore::new(Store::open(&config).await.unwrap(), ())
}

/// The URL of a fresh database on the test process's throwaway cluster.
pub(crate) async fn fresh_database() -> String {
    tokio::task::spawn_blocking(|| throwaway_postgres::shared().create_database())
        .await
        .unwrap()
}

conformance_suite!(postgres_server, super::postgres);
