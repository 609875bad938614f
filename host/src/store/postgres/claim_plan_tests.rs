//! The claim's cost follows what it takes, not the backlog: with
//! thousands of notifications due and statistics from before they were
//! (analyzed while not yet due, then all made due at once, as a
//! redelivery of many does),
//! one claim of a few notifications reads a few hundred pages at most.
//! Finding the instances with due notifications as `EXISTS` let the
//! planner turn that probe into a join reading every due row, once per
//! claim.

use super::super::outbox::WAITING;
use super::claims::TAKE;
use super::tests::{buffers_touched, database_with_instance};

/// Notifications due in the test's backlog.
const BACKLOG: i64 = 20_000;
/// Notifications one claim takes.
const TAKEN: i64 = 10;
/// Most shared buffers one such claim may touch: its rows and the index
/// pages leading to them and to their new versions (about 230, whatever
/// the backlog); the join over the whole backlog touched about one page
/// per five due notifications, over a thousand for a backlog of 5,000.
const MOST_BUFFERS: i64 = 600;

#[tokio::test]
async fn a_claim_reads_what_it_takes_not_the_backlog() {
    let (client, instance) = database_with_instance("backlog").await;
    // Queued not yet due (far in the future), analyzed so, then made due
    // at once.
    client
        .execute(
            "INSERT INTO notifications (id, instance_id, source, content_type, body, \
             event_count, status, next_attempt_at, created_at) \
             SELECT lpad(g::text, 12, '0'), $1, 'webhook', 'application/json', \
                    convert_to(repeat('x', 1200), 'UTF8'), 1, 'pending', $3, g \
             FROM generate_series(1, $2::int8) AS g",
            &[&instance, &BACKLOG, &(WAITING - 1)],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE notifications").await.unwrap();
    client
        .execute("UPDATE notifications SET next_attempt_at = 1", &[])
        .await
        .unwrap();

    let lease = uuid::Uuid::new_v4().to_string();
    let none: Vec<i64> = Vec::new();
    let plan: serde_json::Value = client
        .query_one(
            &format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {TAKE}"),
            &[
                &(BACKLOG + 1),
                &TAKEN,
                &(BACKLOG + 60_000),
                &lease,
                &WAITING,
                &256_i64,
                &none,
                &none,
                &none,
            ],
        )
        .await
        .unwrap()
        .get(0);
    let top = &plan[0]["Plan"];
    assert_eq!(top["Actual Rows"], TAKEN, "the claim took {TAKEN}: {plan}");
    let buffers = buffers_touched(&plan);
    assert!(
        buffers <= MOST_BUFFERS,
        "claiming {TAKEN} of {BACKLOG} due notifications touched {buffers} buffers \
         (at most {MOST_BUFFERS} expected): {plan}"
    );
}
