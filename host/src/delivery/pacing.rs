//! The claim rules delivery passes to the store: the per-instance cap on
//! notifications in flight ([`super::DeliveryConfig::max_in_flight_per_instance`])
//! and every instance's `event.notification.rate_limit`, kept current from
//! the instance service's change channel. The store applies them (see
//! `store::pacing`): the pace itself lives in the database, so retries,
//! redeliveries and every replica share it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::instance::InstanceService;
use crate::store::{ClaimRules, Rate};

/// The rate limits of the instances that have one, by instance id.
#[derive(Clone, Default)]
pub(super) struct Rates(Arc<RwLock<HashMap<i64, Rate>>>);

impl Rates {
    /// The rules of the next claim.
    pub(super) fn rules(&self, per_instance: usize) -> ClaimRules {
        ClaimRules {
            per_instance: u32::try_from(per_instance).unwrap_or(u32::MAX),
            rates: self.0.read().expect("rates lock").clone(),
        }
    }

    /// Reads every instance's rate limit afresh (at start, and after
    /// changes were missed). Keeps what it knew if the store cannot answer.
    pub(super) async fn reload(&self, instances: &InstanceService) {
        match instances.list().await {
            Ok(all) => {
                let rates = all
                    .iter()
                    .filter_map(|i| Some((i.id(), rate(i.settings.rate_limit?))))
                    .collect();
                *self.0.write().expect("rates lock") = rates;
            }
            Err(e) => tracing::warn!(error = %e, "reading instances' rate limits failed"),
        }
    }

    /// Follows one instance's change (`deleted` when it is gone).
    pub(super) async fn refresh(&self, instances: &InstanceService, id: i64, deleted: bool) {
        let limit = if deleted {
            None
        } else {
            match instances.get(id).await {
                Ok(found) => found.and_then(|i| i.settings.rate_limit),
                Err(e) => {
                    tracing::warn!(instance = id, error = %e, "reading an instance's rate limit failed");
                    return;
                }
            }
        };
        let mut rates = self.0.write().expect("rates lock");
        match limit {
            Some(per_second) => rates.insert(id, rate(per_second)),
            None => rates.remove(&id),
        };
    }
}

fn rate(per_second: f64) -> Rate {
    Rate { per_second }
}
