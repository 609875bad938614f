//! Polls: what one page of a vendor poll leaves behind, and the checkpoint
//! that says how far an instance's resource has been read.
//!
//! A page that found events is kept as a receipt (the GET's path and the
//! vendor's answer) with its events and notifications, like a webhook. The
//! checkpoint of a resource moves only in the same transaction as the
//! events of the poll window it closes, so a crash between fetching and
//! storing leaves the old checkpoint and the window is read again:
//! duplicates are possible, gaps are not. A checkpoint never moves back: a
//! page closing an older window than the stored checkpoint leaves it.

use time::OffsetDateTime;

use super::leases::Fence;
use super::receipt::NewReceipt;

/// One page of a poll to store.
#[derive(Clone, Debug, PartialEq)]
pub struct PollWrite {
    /// The polled instance.
    pub instance_id: i64,
    /// The resource name, e.g. `tickets`.
    pub resource: String,
    /// The vendor's answer with its events and notifications; `None` when
    /// the page found no events (nothing to keep but the checkpoint).
    pub page: Option<NewReceipt>,
    /// The resource's new checkpoint, on the page that closes the window.
    pub checkpoint: Option<OffsetDateTime>,
    /// The partition lease the poll runs under, on a database several
    /// replicas share: nothing is written unless it still holds. `None`
    /// writes unconditionally (one process owns every partition).
    pub fence: Option<Fence>,
}

impl PollWrite {
    /// Fails unless the page (if any) is of the polled instance.
    pub(super) fn check_page(&self) -> super::Result<()> {
        match &self.page {
            Some(page) if page.instance_id != self.instance_id => {
                Err(super::StoreError::invalid_value(format!(
                    "poll page of instance {} filed under instance {}",
                    page.instance_id, self.instance_id
                )))
            }
            _ => Ok(()),
        }
    }
}

/// What became of a stored poll page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollOutcome {
    /// The receipt holding the page, when it had events.
    pub receipt_id: Option<String>,
    /// False when the page carried a checkpoint behind the stored one,
    /// which was left as it was (checkpoints only move forward).
    pub checkpoint_moved: bool,
    /// True when the page's fence no longer held (the partition changed
    /// owner or its lease expired): nothing at all was written.
    pub fenced: bool,
}

/// How far one resource of an instance has been polled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollCheckpoint {
    /// The resource name.
    pub resource: String,
    /// The end of the last poll window whose events are stored; the next
    /// window starts here (less the resource's `pollDelay`).
    pub checkpoint: OffsetDateTime,
    /// When it was written.
    pub updated_at: OffsetDateTime,
}
