//! Where and how one instance's notifications go: its callback URL, the
//! keys that sign them and the extra headers they carry, read for each
//! claim batch (and for a test notification) from the instance service.

use std::sync::Arc;

use crate::instance::headers::DeliveryHeaders;
use crate::instance::InstanceService;
use crate::store::Store;

/// Where and how one instance's notifications go.
pub(super) struct Target {
    pub(super) url: Option<url::Url>,
    pub(super) keys: Vec<String>,
    pub(super) headers: DeliveryHeaders,
}

/// The target of `instance_id`: its typed settings from the instance
/// service (cached; parsed once per version), its retired keys still in
/// their grace period from the store. `None` when the instance is gone or
/// cannot be read.
pub(super) async fn load(
    store: &Store,
    instances: &InstanceService,
    instance_id: i64,
) -> Option<Arc<Target>> {
    let retired = store.retired_keys(instance_id).await.unwrap_or_default();
    let mut found = instances.get(instance_id).await;
    if let Ok(Some(cached)) = &found {
        // The retired keys are read fresh; a current key already among
        // them means the cached instance is behind a rotation made
        // elsewhere (another replica) that has not reached this one yet.
        if cached
            .settings
            .signature_key
            .as_ref()
            .is_some_and(|key| retired.contains(key))
        {
            found = instances.load(instance_id).await;
        }
    }
    match found {
        Ok(Some(instance)) => {
            let settings = &instance.settings;
            let mut keys: Vec<String> = settings.signature_key.clone().into_iter().collect();
            for key in retired {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            Some(Arc::new(Target {
                url: settings.callback_url.clone(),
                keys,
                headers: settings.headers.clone(),
            }))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(instance = instance_id, error = %e, "reading instance for delivery failed");
            None
        }
    }
}
