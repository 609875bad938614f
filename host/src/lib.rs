//! plugboard: a sidecar that turns SaaS vendor activity into normalized,
//! signed events.
//!
//! The data path, one module per stage:
//! - [`ingress`]: vendors call plugboard (webhooks) → the element plugin verifies and maps;
//! - [`accept`]: the one step webhooks and polls share: normalized events and their notifications;
//! - [`runtime`]: the sandboxed WebAssembly host that runs element plugins;
//! - [`registry`]: the set of loaded plugins, hot-reloaded from a folder;
//! - [`instance`]: what an instance's configuration means, and the one service that changes instances;
//! - [`store`]: durable storage of instances, receipts and notifications (embedded SQLite, or PostgreSQL);
//! - [`delivery`]: signed notifications to each instance's callback, with retries and dead-lettering;
//! - [`poller`]: plugboard reads vendors on a schedule (polling) → the plugin prepares and maps;
//! - [`outbound`]: every request the host makes, behind one policy;
//! - [`api`]: the authenticated management API;
//! - [`console`]: the web console, a browser front end to that API.
//!
//! These docs are written for contributors: module overviews link to the
//! private items they describe. Build them with
//! `cargo doc --no-deps --document-private-items` (CI does, with warnings
//! as errors).

#![allow(rustdoc::private_intra_doc_links)]

pub mod accept;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod console;
pub mod delivery;
pub mod ingress;
pub mod instance;
#[cfg(test)]
mod module_graph;
pub mod outbound;
pub mod poller;
pub mod registry;
pub mod runtime;
pub mod scaffold;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tools;
