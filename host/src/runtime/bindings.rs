//! The only `bindgen!` in plugboard: Rust bindings for the WIT contract in
//! `wit/element.wit` (`plugboard:element@0.1.0`, world `element-plugin`).
//!
//! Imports are plain synchronous host functions: calls run on blocking
//! threads, and the one import that does I/O (`https-get`) blocks on the
//! host's tokio runtime while its time is excluded from the guest's CPU
//! deadline.

// The generated items are documented by the `///` comments of the WIT.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "element-plugin",
});

pub use plugboard::element::host::LogLevel;
pub use plugboard::element::types::{
    ConfigKey, ElementError, ElementInfo, EventModes, EventType, FetchError, Header, HttpRequest,
    HttpResponse, NormalizedEvent, PollContext, PollPage, WebhookEvents, WebhookOutcome,
};
