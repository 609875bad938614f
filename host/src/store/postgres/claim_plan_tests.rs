//! The claim's cost follows what it takes, not the backlog: with
//! thousands of notifications due and statistics from before they were
//! (analyzed while not yet due, then all made due at once, as a
//! redelivery of many does),
//! one claim of a few notifications reads a few hundred pages at most.
//! Finding the instances with due notifications as `EXISTS` let the
//! planner turn that probe into a join reading every due row, once per
//! claim; and late in a drain, with statistics from when all of it was
//! due, the probe still goes through the due index; and counting an
//! instance's leased notifications reads what is leased, not what was
//! delivered since the last vacuum. Each runs under the claim's planner
//! settings, as claims do.
//!
//! Due times and leases are in the narrow delivery queue (migration V16),
//! whose rows are a few dozen bytes: a scan reads far fewer pages there
//! than it did through the notifications with their bodies, so the bounds
//! below are tighter than the figures from that time quoted with them.

use super::super::outbox::WAITING;
use super::claims::{PLANNER, TAKE};
use super::tests::{buffers_touched, database_with_instance, explain_json};

/// Notifications due in the test's backlog.
const BACKLOG: i64 = 20_000;
/// Notifications one claim takes.
const TAKEN: i64 = 10;
/// Most shared buffers one such claim may touch: its rows and the index
/// pages leading to them and to their new versions, and the notifications'
/// bodies it returns (about 200, whatever the backlog). Through the
/// notifications table, the join over the whole backlog touched about one
/// page per five due notifications, over a thousand for a backlog of
/// 5,000.
const MOST_BUFFERS: i64 = 300;

#[tokio::test]
async fn a_claim_reads_what_it_takes_not_the_backlog() {
    let (client, instance) = database_with_instance("backlog").await;
    // Queued not yet due (far in the future), analyzed so, then made due
    // at once.
    queue_backlog(&client, instance, Some(WAITING - 1)).await;
    client
        .execute("UPDATE delivery_queue SET next_attempt_at = 1", &[])
        .await
        .unwrap();

    client
        .batch_execute(&format!("BEGIN; {PLANNER}"))
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
    assert!(
        plan[0].get("JIT").is_none(),
        "the claim was compiled just in time: {plan}"
    );
    let buffers = buffers_touched(&plan);
    assert!(
        buffers <= MOST_BUFFERS,
        "claiming {TAKEN} of {BACKLOG} due notifications touched {buffers} buffers \
         (at most {MOST_BUFFERS} expected): {plan}"
    );
}

/// Of the test's backlog, how many were delivered after the statistics
/// were taken.
const DRAINED: i64 = 19_000;

/// A claim late in a drain: statistics taken while a whole backlog was
/// due (as when a paused instance's backlog waits, or a receiver was down),
/// then most of it delivered. Probing for an instance's due notifications
/// with a bare `LIMIT 1`, the planner expected every row to match and
/// scanned the table from its start, through every delivered notification
/// before the first still due: once per claim, a cost growing with the
/// drain (3,170 buffers to find the instance here, against a few through
/// the due index). Under both custom and generic plans the probe goes
/// through the due index.
#[tokio::test]
async fn a_claim_late_in_a_drain_finds_what_is_due_through_the_due_index() {
    let (client, instance) = database_with_instance("drained").await;
    queue_backlog(&client, instance, None).await;
    deliver_rows(&client, 0, DRAINED).await;
    client
        .batch_execute(&format!("BEGIN; {PLANNER}"))
        .await
        .unwrap();
    for mode in PLAN_MODES {
        let plan = explain_take(&client, mode, 256, false).await;
        assert_eq!(
            plan[0]["Plan"]["Actual Rows"], TAKEN,
            "{mode}: the claim took {TAKEN}: {plan}"
        );
        let probe = plan[0]["Plan"]["Plans"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["Subplan Name"] == "CTE due"))
            .unwrap_or_else(|| panic!("{mode}: no CTE due in {plan}"));
        let mut scans = Vec::new();
        scans_of_queue(probe, &mut scans);
        assert!(
            !scans.is_empty()
                && scans
                    .iter()
                    .all(|(_, index)| index.starts_with("delivery_queue_due")
                        || index.starts_with("delivery_queue_leased")),
            "{mode}: the probe for due instances read the queue through {scans:?}, \
             not the due index: {plan}"
        );
    }
}

/// Of the test's backlog, how many were claimed and then delivered, and
/// how many are still out under a lease when the test's claims run.
const DELIVERED: i64 = 18_900;
const LEASED: i64 = 100;
/// How many notifications are out under a lease at once during the
/// test's drain (when its statistics are taken).
const IN_FLIGHT: i64 = 10_000;
/// The instance's cap on notifications under a lease (a setting; the
/// default is 256).
const CAP: i64 = 1_000;
/// Most shared buffers the count of one instance's leased notifications
/// may touch once a claim has passed the delivered ones: its leased rows'
/// pages and index, about 26 here. A sequential scan touches every page of
/// the queue, old row versions included (287 here; 9,600 when leases were
/// kept in the notifications table); a bitmap scan, which never marks an
/// index entry dead, visits the page of every notification delivered since
/// the last vacuum on every claim (6,900 pages late in a
/// 30,000-notification drain, through the notifications table).
const MOST_LEASE_BUFFERS: i64 = 100;

/// Counting an instance's leased notifications (its room under the cap)
/// reads the lease index, so the first claim after a batch of outcomes
/// marks the delivered ones' old entries dead and later claims skip them:
/// the count costs what is leased, not the outbox nor what was delivered
/// since the last vacuum. The statistics are taken mid-drain, with half
/// the table under a lease (as with many instances at their cap, or a
/// stopped replica's leases not yet expired), as an automatic analyze
/// would: planned freely, the count then becomes a sequential scan of the
/// queue (287 buffers, against 26). Under both custom and generic plans,
/// with the
/// claim's planner settings ([`PLANNER`]).
#[tokio::test]
async fn counting_leases_reads_what_is_leased_not_what_was_delivered() {
    let (client, instance) = database_with_instance("leases").await;
    client
        .batch_execute(
            "ALTER TABLE notifications SET (autovacuum_enabled = off); \
             ALTER TABLE delivery_queue SET (autovacuum_enabled = off)",
        )
        .await
        .unwrap();
    queue_backlog(&client, instance, None).await;
    let until = BACKLOG + 60_000;
    // Claims of 256 and their outcomes, IN_FLIGHT behind.
    let (mut claimed, mut delivered) = (0, 0);
    while claimed < DELIVERED + LEASED {
        let next = (claimed + 256).min(DELIVERED + LEASED);
        lease_rows(&client, claimed, next, until).await;
        claimed = next;
        let done = if claimed == DELIVERED + LEASED {
            DELIVERED
        } else {
            (claimed - IN_FLIGHT).clamp(delivered, DELIVERED)
        };
        deliver_rows(&client, delivered, done).await;
        if claimed - 256 < IN_FLIGHT && claimed >= IN_FLIGHT {
            client
                .batch_execute("ANALYZE delivery_queue")
                .await
                .unwrap();
        }
        delivered = done;
    }
    client
        .batch_execute(&format!("BEGIN; {PLANNER}"))
        .await
        .unwrap();
    for mode in PLAN_MODES {
        // The first claim passes the delivered ones; the second is measured.
        let plan = explain_take(&client, mode, CAP, true).await;
        assert_eq!(
            plan[0]["Plan"]["Actual Rows"], TAKEN,
            "{mode}: the claim took {TAKEN}: {plan}"
        );
        assert!(
            plan[0].get("JIT").is_none(),
            "{mode}: the claim was compiled just in time: {plan}"
        );
        let count = find_node(&plan[0]["Plan"], &|n| {
            n["Subplan Name"]
                .as_str()
                .is_some_and(|s| s.starts_with("SubPlan"))
        })
        .unwrap_or_else(|| panic!("{mode}: no count of leases in {plan}"));
        let buffers = count["Shared Hit Blocks"].as_i64().unwrap()
            + count["Shared Read Blocks"].as_i64().unwrap();
        assert!(
            buffers <= MOST_LEASE_BUFFERS,
            "{mode}: counting the leased notifications past {DELIVERED} delivered ones \
             touched {buffers} buffers (at most {MOST_LEASE_BUFFERS} expected): {plan}"
        );
    }
}

/// The plan modes each prepared claim is checked under.
const PLAN_MODES: [&str; 2] = ["force_custom_plan", "force_generic_plan"];

/// Prepares [`TAKE`] under the plan `mode` (inside the caller's
/// transaction), claims [`TAKEN`] of the test backlog's due notifications
/// with a cap of `cap` (once unmeasured first if `warm_up`), and returns
/// the measured claim's `EXPLAIN (ANALYZE, BUFFERS)` plan.
async fn explain_take(
    client: &tokio_postgres::Client,
    mode: &str,
    cap: i64,
    warm_up: bool,
) -> serde_json::Value {
    client
        .batch_execute(&format!(
            "SET LOCAL plan_cache_mode = {mode}; \
             PREPARE take(int8, int8, int8, text, int8, int8, int8[], int8[], int8[]) AS {TAKE}"
        ))
        .await
        .unwrap();
    let execute = format!(
        "EXECUTE take({now}, {TAKEN}, {until}, '{lease}', {WAITING}, {cap}, \
         '{{}}', '{{}}', '{{}}')",
        now = BACKLOG + 1,
        until = BACKLOG + 60_000,
        lease = uuid::Uuid::new_v4(),
    );
    if warm_up {
        client.batch_execute(&execute).await.unwrap();
    }
    let plan = explain_json(
        client,
        &format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}"),
    )
    .await;
    client.batch_execute("DEALLOCATE take").await.unwrap();
    plan
}

/// Leases the test backlog's notifications `from` (exclusive) to `to`
/// (inclusive), by their place in it, until `until`, as a claim does.
async fn lease_rows(client: &tokio_postgres::Client, from: i64, to: i64, until: i64) {
    client
        .execute(
            "UPDATE delivery_queue SET lease_token = 'earlier', next_attempt_at = $3 \
             WHERE notification_id > lpad($1::int8::text, 12, '0') \
               AND notification_id <= lpad($2::int8::text, 12, '0')",
            &[&from, &to, &until],
        )
        .await
        .unwrap();
}

/// Marks the test backlog's notifications `from` (exclusive) to `to`
/// (inclusive) delivered, as outcomes do: their queue rows go.
async fn deliver_rows(client: &tokio_postgres::Client, from: i64, to: i64) {
    client
        .execute(
            "WITH gone AS (DELETE FROM delivery_queue \
                 WHERE notification_id > lpad($1::int8::text, 12, '0') \
                   AND notification_id <= lpad($2::int8::text, 12, '0') \
                 RETURNING notification_id) \
             UPDATE notifications SET status = 'delivered', delivered_at = 1 \
             WHERE id IN (SELECT notification_id FROM gone)",
            &[&from, &to],
        )
        .await
        .unwrap();
}

/// The first node under `node` (itself included) that `matches`.
fn find_node<'a>(
    node: &'a serde_json::Value,
    matches: &dyn Fn(&serde_json::Value) -> bool,
) -> Option<&'a serde_json::Value> {
    if matches(node) {
        return Some(node);
    }
    node["Plans"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|child| find_node(child, matches))
}

/// Queues [`BACKLOG`] pending notifications of `instance`, due at `due`
/// (or each when it was stored), and analyzes them so.
async fn queue_backlog(client: &tokio_postgres::Client, instance: i64, due: Option<i64>) {
    client
        .execute(
            "WITH stored AS (INSERT INTO notifications (id, instance_id, source, content_type, \
                 body, event_count, status, created_at) \
             SELECT lpad(g::text, 12, '0'), $1, 'webhook', 'application/json', \
                    convert_to(repeat('x', 1200), 'UTF8'), 1, 'pending', g \
             FROM generate_series(1, $2::int8) AS g RETURNING id, created_at) \
             INSERT INTO delivery_queue (notification_id, instance_id, next_attempt_at) \
             SELECT id, $1, coalesce($3, created_at) FROM stored",
            &[&instance, &BACKLOG, &due],
        )
        .await
        .unwrap();
    client
        .batch_execute("ANALYZE notifications; ANALYZE delivery_queue")
        .await
        .unwrap();
}

/// Every scan of `delivery_queue` under `node`: its kind and index.
fn scans_of_queue(node: &serde_json::Value, out: &mut Vec<(String, String)>) {
    if node["Relation Name"] == "delivery_queue" {
        out.push((
            node["Node Type"].as_str().unwrap_or_default().to_string(),
            node["Index Name"].as_str().unwrap_or("none").to_string(),
        ));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        scans_of_queue(child, out);
    }
}
