//! Poll pages and checkpoints: a page's receipt and notifications written
//! by the same code as a webhook's, and the checkpoint beside them in the
//! same transaction; the checkpoint upsert refuses to move it back. A page
//! carrying a fence is written only while its partition lease holds.

use deadpool_postgres::GenericClient;

use super::super::error::Result;
use super::super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::super::timestamp::{from_millis, now, to_millis};
use super::error::{get as col, missing_instance};

/// Writes one page in the caller's transaction: its receipt with
/// notifications, then the checkpoint, which only moves forward.
pub(super) async fn stage(client: &impl GenericClient, write: &PollWrite) -> Result<PollOutcome> {
    let mut outcome = PollOutcome {
        receipt_id: None,
        checkpoint_moved: false,
        fenced: false,
    };
    write.check_page()?;
    if let Some(fence) = &write.fence {
        if !super::leases::fence_holds(client, fence).await? {
            outcome.fenced = true;
            return Ok(outcome);
        }
    }
    if let Some(page) = &write.page {
        // Pages carry no vendor message id, so they are never repeats.
        let stored = super::receipts::stage(client, std::slice::from_ref(page)).await?;
        outcome.receipt_id = stored.first().map(|s| s.receipt_id().to_owned());
    }
    if let Some(checkpoint) = write.checkpoint {
        let stmt = client
            .prepare_cached(
                "INSERT INTO poll_checkpoints (instance_id, resource, checkpoint, updated_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (instance_id, resource) DO UPDATE \
                 SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at \
                 WHERE excluded.checkpoint >= poll_checkpoints.checkpoint",
            )
            .await?;
        let moved = client
            .execute(
                &stmt,
                &[
                    &write.instance_id,
                    &write.resource,
                    &to_millis(checkpoint),
                    &to_millis(now()),
                ],
            )
            .await
            .map_err(|e| missing_instance(e, write.instance_id))?;
        outcome.checkpoint_moved = moved == 1;
    }
    Ok(outcome)
}

/// The checkpoints of an instance's resources, by resource name.
pub(super) async fn checkpoints(
    client: &impl GenericClient,
    instance_id: i64,
) -> Result<Vec<PollCheckpoint>> {
    let stmt = client
        .prepare_cached(
            "SELECT resource, checkpoint, updated_at FROM poll_checkpoints \
             WHERE instance_id = $1 ORDER BY resource",
        )
        .await?;
    client
        .query(&stmt, &[&instance_id])
        .await?
        .iter()
        .map(|row| {
            Ok(PollCheckpoint {
                resource: col(row, 0)?,
                checkpoint: from_millis(col(row, 1)?)?,
                updated_at: from_millis(col(row, 2)?)?,
            })
        })
        .collect()
}
