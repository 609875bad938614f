//! Reprocessing failed receipts: each is run through its element's current
//! plugin with the instance's current configuration, exactly as received
//! (method, path, headers, body), and settled in the store — accepted with
//! its events and notifications (the one accept step, the same transaction
//! and de-duplication rules as at ingress), or kept failed with the new
//! error. The store settles a receipt only while it is still failed, so
//! two replicas reprocessing one receipt produce its events once.

use serde::Serialize;

use super::verdict::{self, Verdict};
use super::IngressState;
use crate::api::ApiError;
use crate::runtime::{Header, HttpRequest};
use crate::store::{ReceiptStatus, Settled, Settlement, StoredReceipt};

/// Failed receipts read per store call while reprocessing an instance's.
const PAGE: u32 = 100;

/// What became of one reprocessed receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Reprocessed {
    /// Accepted now, with these notifications (event ids).
    #[serde(rename_all = "camelCase")]
    Accepted {
        /// Its notifications' ids.
        event_ids: Vec<String>,
    },
    /// Its message repeats an accepted receipt within the window: marked
    /// accepted without notifications of its own.
    #[serde(rename_all = "camelCase")]
    Duplicate {
        /// The receipt holding the message.
        duplicate_of: String,
    },
    /// Still failed, with this error.
    Failed {
        /// The new error.
        error: String,
    },
    /// It was no longer failed (settled meanwhile, e.g. by another replica).
    NotFailed,
}

/// What reprocessing one receipt did, by receipt.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptResult {
    /// The receipt.
    pub receipt_id: String,
    /// What became of it.
    #[serde(flatten)]
    pub result: Reprocessed,
}

/// What reprocessing an instance's failed receipts did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Receipts run through the plugin.
    pub reprocessed: u64,
    /// Now accepted.
    pub accepted: u64,
    /// Found to be duplicates.
    pub duplicate: u64,
    /// Still failed.
    pub failed: u64,
    /// Settled meanwhile by someone else.
    pub not_failed: u64,
    /// Each receipt's result, oldest first.
    pub receipts: Vec<ReceiptResult>,
}

/// Runs failed receipt `receipt` through its element's current plugin and
/// settles it. A receipt that is not failed is reported so, untouched.
pub async fn one(state: &IngressState, receipt: &StoredReceipt) -> Result<Reprocessed, ApiError> {
    if receipt.error.is_none() {
        return Ok(Reprocessed::NotFailed);
    }
    let settlement = match verdict_of(state, receipt).await? {
        Ok((message_id, notifications)) => Settlement::Accepted {
            message_id,
            dedup_window: state.config.dedup_window,
            notifications,
        },
        Err(error) => Settlement::Failed { error },
    };
    let error = match &settlement {
        Settlement::Failed { error } => Some(error.clone()),
        Settlement::Accepted { .. } => None,
    };
    let settled = state
        .store
        .settle_receipt(&receipt.id, settlement)
        .await
        .map_err(|e| ApiError::store("settling the receipt failed", &e))?;
    Ok(match settled {
        Settled::Accepted { event_ids } => {
            if !event_ids.is_empty() {
                state.delivery.wake();
            }
            tracing::info!(receipt = %receipt.id, events = event_ids.len(), "failed receipt reprocessed and accepted");
            Reprocessed::Accepted { event_ids }
        }
        Settled::Duplicate { of } => Reprocessed::Duplicate { duplicate_of: of },
        Settled::StillFailed => Reprocessed::Failed {
            error: error.unwrap_or_default(),
        },
        Settled::NotFailed => Reprocessed::NotFailed,
    })
}

/// Reprocesses every failed webhook receipt of instance `id`, oldest first.
pub async fn all(state: &IngressState, id: i64) -> Result<Summary, ApiError> {
    let mut summary = Summary::default();
    let mut after = String::new();
    loop {
        let page = state
            .store
            .failed_receipts(id, &after, PAGE)
            .await
            .map_err(|e| ApiError::store("reading failed receipts failed", &e))?;
        for receipt in &page {
            let result = one(state, receipt).await?;
            summary.reprocessed += 1;
            match &result {
                Reprocessed::Accepted { .. } => summary.accepted += 1,
                Reprocessed::Duplicate { .. } => summary.duplicate += 1,
                Reprocessed::Failed { .. } => summary.failed += 1,
                Reprocessed::NotFailed => summary.not_failed += 1,
            }
            summary.receipts.push(ReceiptResult {
                receipt_id: receipt.id.clone(),
                result,
            });
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE => after = last.id.clone(),
            _ => return Ok(summary),
        }
    }
}

/// The plugin's verdict on `receipt`: its message id and notifications, or
/// why it still fails. An error only when the instance cannot be read.
async fn verdict_of(
    state: &IngressState,
    receipt: &StoredReceipt,
) -> Result<Result<(Option<String>, Vec<crate::store::NewNotification>), String>, ApiError> {
    let Some(loaded) = state.registry.get(&receipt.element_key) else {
        return Ok(Err(format!(
            "no element plugin '{}' is loaded",
            receipt.element_key
        )));
    };
    let Some(instance) = state
        .instances
        .get(
            loaded.plugin.description(),
            loaded.plugin.content_hash(),
            receipt.instance_id,
        )
        .await
        .map_err(|e| ApiError::store("reading the instance failed", &e))?
    else {
        return Ok(Err(format!("instance {} is gone", receipt.instance_id)));
    };
    let request = HttpRequest {
        method: receipt.method.clone(),
        url: receipt.path.clone(),
        query: String::new(),
        headers: receipt
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body: receipt.body.to_vec(),
    };
    Ok(
        match verdict::run(
            &loaded,
            &instance,
            &request,
            &receipt.body,
            receipt.received_at,
        )
        .await
        {
            Verdict::Accepted {
                message_id,
                outcome: ReceiptStatus::Accepted { notifications },
            } => Ok((message_id, notifications)),
            Verdict::Accepted {
                outcome: ReceiptStatus::Failed { error },
                ..
            } => Err(error),
            Verdict::Failed { error, .. } => Err(error),
            Verdict::Refused(e) => Err(format!("refused ({}): {}", e.status.as_u16(), e.message)),
            Verdict::Respond(r) => Err(format!(
                "the plugin answered the request itself (status {}) instead of mapping it",
                r.status
            )),
        },
    )
}
