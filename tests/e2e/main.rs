//! End-to-end tests of plugboard against real compiled plugins (built by
//! `plugins/build.sh`), a real embedded store and real HTTP on loopback.
//! One test binary; shared helpers live in `support`.

/// Every error of the HTTP surface is the API's JSON, framework rejections included.
mod api_errors;
// Guest panics in the call error, the 500 and the log; host clock and hex; `plugins run`.
mod authoring;
mod cli;
/// Two replicas on one PostgreSQL: partitions split, GET /replicas, metrics, hand-over.
mod cluster;
mod compiler;
mod config;
// Idle, slow and excess connections; oversized bodies; shutdown with idle keep-alives.
mod connections;
mod console;
// A 0.1.0 component beside 0.2.0 ones: hot-loaded, webhook flow, no poll defaults.
mod contract;
mod crash;
/// TLS to PostgreSQL: `sslmode=verify-full` with the operator's CA (`sslrootcert`); a wrong CA refused.
mod database_tls;
mod delivery;
// Per-instance event filters: a filtered event logged FILTERED, not sent; PATCH; redelivery.
mod event_filters;
// Searching the event log (object, type, element, instance, status, time) and redelivering a search.
mod event_search;
// Hostile payloads (lone surrogates, invalid UTF-8, deep nesting, huge numbers) read back byte-exact.
mod event_log_payloads;
// Per-element concurrency budget and circuit breaker; the plugin file size cap.
mod fairness;
/// The README's "A first webhook" run as written: signed GitHub webhook to verified notification.
mod first_webhook;
// A full data folder on a real tmpfs: 503 with Retry-After, not ready, recovers, nothing lost.
mod full_disk;
mod ingress;
// The inbound log (failed, rejected, duplicate requests; secrets redacted; the flood cap) and reprocessing after a fix.
mod inbound;
mod instance_changes;
mod instances_api;
mod isolation;
mod languages;
mod observability;
/// Ordered delivery per object: a failing one holds back only its object.
mod ordered_delivery;
// Per-instance rate limit judged at the receiver (retries too); a 5 s receiver delays no other instance; hand-back.
mod pacing;
mod polling;
mod propagation;
/// Extra delivery headers, and a test notification to check a receiver.
mod receiver_setup;
// Three real replicas on one PostgreSQL: kills, freezes, database crashes, propagation, partitions.
mod replicas;
mod runtime;
mod secrets;
mod shutdown;
// Registering instances at the vendor: ConnectWise callbacks added, replaced and removed; refusals.
mod subscription;
mod support;
mod warm;
