//! Calls of the optional `subscription` interface
//! (`plugboard:element/subscription@0.2.0`): an element that exports it
//! registers an instance's inbound URL at the vendor and removes it again.
//!
//! The interface is not part of the world the host's bindings are generated
//! for (an element that does not export it must keep loading), so its two
//! functions are looked up by name in the instance and called through
//! typed functions, whose types were checked when the plugin was loaded
//! ([`super::contract::check_subscription_exports`]). Like every call they
//! are admitted by the element's budget and breaker and take a call slot;
//! unlike the element's other calls they always run in a fresh instance,
//! never a warm one: a subscription is rare, and nothing of it should
//! linger in memory a webhook call might see.

use std::time::Instant;

use wasmtime::component::{ComponentNamedList, Lift, Lower};

use super::bindings::ElementError;
use super::contract::SUBSCRIPTION_EXPORT;
use super::plugin::ElementPlugin;
use super::state::{CallLabel, FetchScope};
use super::CallError;

impl ElementPlugin {
    /// Whether the element implements subscription.
    pub fn subscribes(&self) -> bool {
        self.description().subscribes
    }

    /// Asks the element to register `callback_url` at the vendor; returns
    /// what to remember for [`ElementPlugin::unsubscribe`]. `previous` is
    /// what an earlier subscription of the instance left registered.
    pub async fn subscribe(
        &self,
        label: CallLabel,
        fetch: FetchScope,
        config: &[(String, String)],
        callback_url: &str,
        previous: Option<&str>,
    ) -> Result<String, CallError> {
        self.call_subscription::<_, String>(
            "subscribe",
            label,
            fetch,
            (config, callback_url, previous),
        )
        .await
    }

    /// Asks the element to remove at the vendor what a subscription
    /// registered (`remembered`: what [`ElementPlugin::subscribe`] returned).
    pub async fn unsubscribe(
        &self,
        label: CallLabel,
        fetch: FetchScope,
        config: &[(String, String)],
        remembered: &str,
    ) -> Result<(), CallError> {
        self.call_subscription::<_, ()>("unsubscribe", label, fetch, (config, remembered))
            .await
    }

    /// Calls the export `name` of the subscription interface in a fresh
    /// instance with `params`.
    async fn call_subscription<P, R>(
        &self,
        name: &'static str,
        label: CallLabel,
        fetch: FetchScope,
        params: P,
    ) -> Result<R, CallError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: Lift + Send + Sync + 'static,
    {
        if !self.subscribes() {
            return Err(CallError::Element(ElementError::Unsupported(format!(
                "element '{}' does not implement subscription",
                self.description().key
            ))));
        }
        let admission = self.admit().await?;
        let _permit = self.call_slot().await?;
        let started = Instant::now();
        let mut store = self.new_store(label, fetch);
        let result = async {
            let instance = self.instance_pre().instantiate_async(&mut store).await?;
            let func = instance
                .get_export_index(&mut store, None, SUBSCRIPTION_EXPORT)
                .and_then(|interface| instance.get_export_index(&mut store, Some(&interface), name))
                .and_then(|index| instance.get_func(&mut store, index))
                .ok_or_else(|| wasmtime::Error::msg(format!("the export `{name}` is missing")))?;
            let typed = func.typed::<P, (Result<R, ElementError>,)>(&store)?;
            let (answer,) = typed.call_async(&mut store, params).await?;
            Ok(answer)
        }
        .await;
        self.finish(name, started, &mut store, result, admission)?
            .map_err(CallError::Element)
    }
}
