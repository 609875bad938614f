//! One plugin call on an inbound request and what it comes to — the step
//! a webhook and a reprocessed receipt share: the plugin's answer of its
//! own, its events accepted into notifications ([`crate::accept`]), a
//! failure to keep the receipt for (a trap, a timeout, output it got
//! wrong), or a refusal (bad signature, malformed, open circuit).

use std::time::Instant;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::accept::{self, InstanceInfo, Recipient};
use crate::api::ApiError;
use crate::instance::cache::CachedInstance;
use crate::registry::LoadedPlugin;
use crate::runtime::{CallError, CallLabel, HttpRequest, HttpResponse, WebhookOutcome};
use crate::store::ReceiptStatus;

/// What the plugin made of a request.
pub(super) enum Verdict {
    /// It answered the request itself (a handshake, a challenge).
    Respond(HttpResponse),
    /// It mapped it: the receipt is stored accepted with these notifications.
    Accepted {
        /// The vendor's message id, if the plugin found one.
        message_id: Option<String>,
        /// The receipt's outcome (its notifications).
        outcome: ReceiptStatus,
    },
    /// It failed on it: the receipt is kept as failed with `error`, and
    /// the vendor answered `answer`.
    Failed {
        /// What went wrong.
        error: String,
        /// The answer to the vendor.
        answer: ApiError,
    },
    /// It refused it (or could not run): nothing is stored.
    Refused(ApiError),
}

/// Runs `loaded`'s webhook call for `instance` on `request`.
pub(super) async fn run(
    loaded: &LoadedPlugin,
    instance: &CachedInstance,
    request: &HttpRequest,
    body: &Bytes,
    received_at: OffsetDateTime,
) -> Verdict {
    let stored = &instance.configured.instance;
    let settings = &instance.configured.settings;
    let started = Instant::now();
    let outcome = loaded
        .plugin
        .webhook(
            CallLabel {
                element: stored.element_key.clone(),
                instance: Some(stored.id),
            },
            instance.fetch.clone(),
            &instance.config,
            request,
        )
        .await;
    tracing::debug!(
        elapsed_us = started.elapsed().as_micros() as u64,
        "plugin call done"
    );
    match outcome {
        Ok(WebhookOutcome::Respond(r)) => Verdict::Respond(r),
        Ok(WebhookOutcome::Accepted(accepted)) => {
            let recipient = Recipient {
                instance: InstanceInfo {
                    id: stored.id,
                    name: &stored.name,
                    tags: &stored.tags,
                    element_key: &stored.element_key,
                },
                format: settings.format,
                filter: &settings.filter,
                ordered: settings.ordered,
            };
            match accept::webhook(
                &recipient,
                accepted.events,
                accepted.raw.as_deref(),
                body,
                received_at,
            ) {
                Ok(outcome) => Verdict::Accepted {
                    message_id: accepted.message_id.filter(|m| !m.is_empty()),
                    outcome,
                },
                Err(why) => {
                    let answer = ApiError::plugin_output(why);
                    Verdict::Failed {
                        error: answer.message.clone(),
                        answer,
                    }
                }
            }
        }
        Err(e) if e.is_plugin_failure() => {
            tracing::warn!(error = %e, "plugin failed; receipt stored as failed");
            Verdict::Failed {
                error: e.to_string(),
                answer: e.into(),
            }
        }
        Err(e @ CallError::CircuitOpen { .. }) => {
            tracing::debug!(error = %e, "webhook refused: the element's circuit breaker is open");
            Verdict::Refused(e.into())
        }
        Err(e) => {
            tracing::info!(kind = e.kind(), error = %e, "webhook rejected by plugin");
            Verdict::Refused(e.into())
        }
    }
}
