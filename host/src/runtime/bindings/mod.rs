//! Rust bindings of every contract version the host serves, and the
//! conversions between them. The `bindgen!` of each version appears once,
//! in its own module: [`v0_2`] for `wit/element.wit`
//! (`plugboard:element@0.2.0`, the newest) and [`v0_1`] for
//! `wit/v0.1.0/element.wit`.
//!
//! The newest version's types are the runtime's one internal
//! representation: a 0.2.0 component is called with them directly, and a
//! 0.1.0 component's calls convert arguments down and results up
//! ([`convert`]), a 0.1.0 `element-info` becoming one without a default poll
//! configuration. Its host imports run the 0.2.0 implementations.
//!
//! Exports are called asynchronously: a call runs on a wasmtime fiber
//! inside the caller's task, yielding to the executor at every epoch tick.
//! Imports are plain synchronous host functions except the two that do
//! I/O, `https-get` and `https-send`, which await the outbound client (their
//! time is excluded from the guest's CPU deadline). The optional
//! `subscription` interface is not in the world bound here (an element
//! need not export it); it is called by name ([`super::subscription`]).

// The generated items are documented by the `///` comments of the WIT.
#![allow(missing_docs)]

pub(super) mod convert;
pub(super) mod v0_1;
pub(super) mod v0_2;

pub use v0_2::plugboard::element::host::LogLevel;
pub use v0_2::plugboard::element::types::{
    ConfigKey, ElementError, ElementInfo, EventModes, EventType, FetchError, Header, HttpRequest,
    HttpResponse, NormalizedEvent, PollContext, PollPage, WebhookEvents, WebhookOutcome,
};
