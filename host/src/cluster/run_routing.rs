//! Handing a manual poll ("run now") to the replica that owns the
//! instance's partition: the receiving replica looks the owner up and
//! sends `NOTIFY plugboard_poll_run, '<instance id>'`; every replica hears
//! it on its listening connection and the owner runs the poll
//! ([`crate::poller::Poller::follow_run_requests`]).

use serde::Serialize;

use super::{partition_of, Cluster};

/// The notification channel of run-now requests; the payload is the
/// instance id in decimal.
pub const POLL_RUN_CHANNEL: &str = "plugboard_poll_run";

/// A run-now request handed to another replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandedOver {
    /// The instance to poll.
    pub instance_id: i64,
    /// Its partition.
    pub partition: u16,
    /// The replica holding the partition, which runs the poll; `None` when
    /// no replica holds it right now (between leases): nothing was sent.
    pub replica: Option<String>,
}

impl Cluster {
    /// Hands a manual poll of `instance_id` to the replica owning its
    /// partition. `None` when this replica owns it (or the store is not
    /// shared): the caller runs it itself.
    pub async fn hand_over_run(
        &self,
        instance_id: i64,
    ) -> crate::store::Result<Option<HandedOver>> {
        let Some(leases) = &self.inner.leases else {
            return Ok(None);
        };
        if self.holds(instance_id) {
            return Ok(None);
        }
        let partition = partition_of(instance_id);
        let owner = leases
            .replicas(self.inner.config.lease)
            .await?
            .into_iter()
            .find(|r| r.partitions.contains(&partition))
            .map(|r| r.id);
        if owner.is_some() {
            leases
                .notify(POLL_RUN_CHANNEL, &instance_id.to_string())
                .await?;
        }
        Ok(Some(HandedOver {
            instance_id,
            partition,
            replica: owner,
        }))
    }
}
