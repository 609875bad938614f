//! [`Store`]'s operations on the inbound log and on failed receipts (see
//! [`super::inbound`] for what the log holds and guarantees).

use time::OffsetDateTime;

use super::error::Result;
use super::inbound::{
    DroppedEntries, InboundCaps, InboundEntry, InboundQuery, InboundWritten, NewInboundEntry,
    Settled, Settlement, StoredReceipt,
};
use super::timestamp;
use super::{Store, PRUNE_CHUNK};

impl Store {
    /// Stores rejected, duplicate and responded entries in one write, each
    /// only while its instance and the whole log stay under `caps`; those
    /// over a cap, and `dropped` (per instance, lost before reaching the
    /// store), are added to their instances' dropped counts.
    pub async fn record_inbound(
        &self,
        entries: Vec<NewInboundEntry>,
        dropped: Vec<(i64, u64)>,
        caps: InboundCaps,
    ) -> Result<InboundWritten> {
        let now = timestamp::to_millis(timestamp::now());
        self.backend()
            .record_inbound(entries, dropped, caps, now)
            .await
    }

    /// A page of the inbound log, newest first (bodies left out).
    pub async fn list_inbound(&self, query: InboundQuery) -> Result<Vec<InboundEntry>> {
        self.backend().list_inbound(query).await
    }

    /// One inbound log entry (a webhook receipt or a request that left
    /// none), with its body.
    pub async fn get_inbound(&self, id: &str) -> Result<Option<InboundEntry>> {
        self.backend().get_inbound(id.to_owned()).await
    }

    /// How many entries were dropped beyond the caps, per instance (one
    /// instance's, or every instance's).
    pub async fn inbound_dropped(&self, instance_id: Option<i64>) -> Result<Vec<DroppedEntries>> {
        self.backend().inbound_dropped(instance_id).await
    }

    /// Deletes the inbound entries (not receipts: they go with the event
    /// log's retention) received before `before`, and the dropped counts
    /// last bumped before then, in chunks of [`PRUNE_CHUNK`].
    pub async fn prune_inbound(&self, before: OffsetDateTime) -> Result<u64> {
        let before = timestamp::to_millis(before);
        let mut pruned = 0;
        loop {
            let n = self.backend().prune_inbound(before, PRUNE_CHUNK).await?;
            pruned += n;
            if n < PRUNE_CHUNK as u64 {
                return Ok(pruned);
            }
        }
    }

    /// The receipt with this id, whole (headers and body as received).
    pub async fn get_receipt(&self, id: &str) -> Result<Option<StoredReceipt>> {
        self.backend().get_receipt(id.to_owned()).await
    }

    /// Up to `limit` failed webhook receipts of an instance after the id
    /// `after` (empty: from the first), oldest first.
    pub async fn failed_receipts(
        &self,
        instance_id: i64,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>> {
        self.backend()
            .failed_receipts(instance_id, after.to_owned(), limit)
            .await
    }

    /// Settles a failed receipt with the verdict of a new plugin call: in
    /// one transaction, only while it is still failed, so of two
    /// concurrent settlements (two replicas) one writes and the other is
    /// told [`Settled::NotFailed`]. Accepted, its notifications are due now.
    pub async fn settle_receipt(&self, id: &str, settlement: Settlement) -> Result<Settled> {
        let now = timestamp::to_millis(timestamp::now());
        self.backend()
            .settle_receipt(id.to_owned(), settlement, now)
            .await
    }
}
