//! The only `bindgen!` in plugboard: Rust bindings for the WIT contract in
//! `wit/element.wit` (`plugboard:element@0.1.0`, world `element-plugin`).
//!
//! Exports are called asynchronously: a call runs on a wasmtime fiber
//! inside the caller's task, yielding to the executor at every epoch tick.
//! Imports are plain synchronous host functions except the one that does
//! I/O, `https-get`, which awaits the outbound client (its time is excluded
//! from the guest's CPU deadline).

// The generated items are documented by the `///` comments of the WIT.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "element-plugin",
    imports: {
        "plugboard:element/host.https-get": async,
    },
    exports: {
        default: async,
    },
});

pub use plugboard::element::host::LogLevel;
pub use plugboard::element::types::{
    ConfigKey, ElementError, ElementInfo, EventModes, EventType, FetchError, Header, HttpRequest,
    HttpResponse, NormalizedEvent, PollContext, PollPage, WebhookEvents, WebhookOutcome,
};
