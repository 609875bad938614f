//! Errors of loading and calling element plugins.
//!
//! A plugin's own answer ([`CallError::Element`]) is distinct from the
//! plugin failing ([`CallError::Trap`], [`CallError::Timeout`],
//! [`CallError::Memory`]), and both from the host refusing to run the call
//! ([`CallError::CircuitOpen`], [`CallError::Unavailable`]); the HTTP layer
//! maps each to a status in one place.

use std::time::Duration;

use super::bindings::ElementError;

/// Why a plugin file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// The component does not match any `plugboard:element` contract version
    /// the host serves (the message names the version it claims).
    #[error("does not match the plugboard:element contract: {0}")]
    Contract(String),
    /// `describe()` failed or returned something unusable.
    #[error("describe() failed: {0}")]
    Describe(String),
    /// Reading the file or the compiled cache failed.
    #[error("{0}")]
    Io(String),
}

/// Why a plugin call did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with a typed error.
    #[error("{}", describe_element_error(.0))]
    Element(ElementError),
    /// The plugin crashed (a trap: panic, unreachable, out-of-bounds access…).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin used up its CPU deadline and was stopped.
    #[error("plugin exceeded its {}ms CPU deadline", .0.as_millis())]
    Timeout(Duration),
    /// The plugin tried to use more memory than its cap.
    #[error("plugin exceeded its memory limit of {0} bytes")]
    Memory(usize),
    /// The element's calls kept failing and its circuit breaker is open: the
    /// call was refused without running; try again after `retry_after`.
    #[error(
        "element '{element}' keeps failing (trap, timeout or memory); its calls are refused \
         for {} s",
        retry_after.as_secs()
    )]
    CircuitOpen {
        /// The element's key.
        element: String,
        /// Time until the breaker lets a call through again (whole seconds).
        retry_after: Duration,
    },
    /// The host could not set up the call (e.g. too many concurrent calls).
    #[error("plugin call could not start: {0}")]
    Unavailable(String),
}

impl CallError {
    /// A short, stable name of the error kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Element(ElementError::BadRequest(_)) => "bad_request",
            CallError::Element(ElementError::Unauthorized(_)) => "unauthorized",
            CallError::Element(ElementError::Unsupported(_)) => "unsupported",
            CallError::Element(ElementError::Internal(_)) => "internal",
            CallError::Trap(_) => "trap",
            CallError::Timeout(_) => "timeout",
            CallError::Memory(_) => "memory",
            CallError::CircuitOpen { .. } => "circuit_open",
            CallError::Unavailable(_) => "unavailable",
        }
    }

    /// Whether the plugin itself failed (as opposed to answering with an error).
    pub fn is_plugin_failure(&self) -> bool {
        matches!(
            self,
            CallError::Trap(_) | CallError::Timeout(_) | CallError::Memory(_)
        )
    }
}

fn describe_element_error(e: &ElementError) -> String {
    match e {
        ElementError::BadRequest(m) => format!("bad request: {m}"),
        ElementError::Unauthorized(m) => format!("unauthorized: {m}"),
        ElementError::Unsupported(m) => format!("unsupported: {m}"),
        ElementError::Internal(m) => format!("internal error: {m}"),
    }
}
