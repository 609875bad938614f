//! `connectwise`: the ConnectWise Manage element plugin.
//!
//! Webhooks: ConnectWise callbacks are verified (`x-content-signature`, keyed
//! by the signing key behind `Metadata.key_url`) and mapped into one event
//! each. Polling: the REST API is read by `lastUpdated`, page by page.
//! Subscription: the instance's inbound URL is registered with the
//! callbacks API, one callback per record type, and removed again.
//!
//! The logic lives in plain modules that take a `host::Host`, so it is unit
//! tested on the build machine; this file only wires it to the WIT exports.

#[cfg(target_arch = "wasm32")]
mod arena;
mod config;
mod host;
mod json;
mod poll;
mod rest;
mod subscription;
#[cfg(test)]
mod testing;
mod timestamp;
mod webhook;

mod bindings {
    //! Rust bindings of the `element-plugin-subscribing` world.
    #![allow(missing_docs)]

    wit_bindgen::generate!({
        path: "../../wit",
        world: "element-plugin-subscribing",
    });
}

use bindings::exports::plugboard::element::element::Guest;
use bindings::exports::plugboard::element::subscription::Guest as Subscription;
use bindings::plugboard::element::types::{
    Config, ElementError, ElementInfo, HttpRequest, HttpResponse, PollContext, PollPage,
    WebhookOutcome,
};
use config::Settings;
use host::WasmHost;

/// Allocate from a bump arena first (see `arena.rs`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::ArenaThenSystem = arena::ArenaThenSystem;

/// Routes panic messages to the host's log at error level, once per
/// instance, so the host shows them in the call's error.
fn log_panics() {
    #[cfg(target_arch = "wasm32")]
    {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                bindings::plugboard::element::host::log(
                    host::LogLevel::Error,
                    &format!("panic: {info}"),
                );
            }));
        });
    }
}

/// The exported element.
struct ConnectWise;

impl Guest for ConnectWise {
    fn describe() -> ElementInfo {
        log_panics();
        config::element_info()
    }

    fn webhook(config: Config, request: HttpRequest) -> Result<WebhookOutcome, ElementError> {
        log_panics();
        webhook::handle(&WasmHost, Settings::new(&config), &request).map(WebhookOutcome::Accepted)
    }

    fn prepare_poll(
        config: Config,
        poll: PollContext,
        draft: HttpRequest,
    ) -> Result<HttpRequest, ElementError> {
        log_panics();
        poll::prepare(&WasmHost, Settings::new(&config), &poll, &draft)
    }

    fn map_poll(
        config: Config,
        poll: PollContext,
        response: HttpResponse,
    ) -> Result<PollPage, ElementError> {
        log_panics();
        poll::map(&WasmHost, Settings::new(&config), &poll, &response)
    }
}

impl Subscription for ConnectWise {
    fn subscribe(
        config: Config,
        callback_url: String,
        previous: Option<String>,
    ) -> Result<String, ElementError> {
        log_panics();
        subscription::subscribe(
            &WasmHost,
            Settings::new(&config),
            &callback_url,
            previous.as_deref(),
        )
    }

    fn unsubscribe(config: Config, remembered: String) -> Result<(), ElementError> {
        log_panics();
        subscription::unsubscribe(&WasmHost, Settings::new(&config), &remembered)
    }
}

bindings::export!(ConnectWise with_types_in bindings);
