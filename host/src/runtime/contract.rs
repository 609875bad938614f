//! The contract versions the host serves, and which one a component
//! implements: found at load from its export
//! `plugboard:element/element@<version>`, newest first. Each pre-linked
//! component keeps the bindings of its version; calls dispatch on that with
//! one `match`.

use serde::Serialize;
use wasmtime::component::{Component, InstancePre};

use super::bindings::{v0_1, v0_2};
use super::state::CallState;
use super::LoadError;

/// A version of the `plugboard:element` contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ContractVersion {
    /// `plugboard:element@0.1.0`: the first contract.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `plugboard:element@0.2.0`: adds `element-info.default-poll-configuration`.
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl ContractVersion {
    /// Every version the host serves, newest first.
    pub const SERVED: [ContractVersion; 2] = [ContractVersion::V0_2, ContractVersion::V0_1];

    /// The version number, e.g. `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
            ContractVersion::V0_2 => "0.2.0",
        }
    }

    /// The name of the interface a component of this version exports.
    pub fn export_name(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "plugboard:element/element@0.1.0",
            ContractVersion::V0_2 => "plugboard:element/element@0.2.0",
        }
    }

    /// The newest version whose element interface `component` exports.
    fn of(component: &Component) -> Result<Self, LoadError> {
        Self::SERVED
            .into_iter()
            .find(|v| component.get_export_index(None, v.export_name()).is_some())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::SERVED.iter().map(|v| v.export_name()).collect();
                LoadError::Contract(format!(
                    "the component exports none of the element interfaces this host serves ({})",
                    names.join(", ")
                ))
            })
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugboard:element@{}", self.as_str())
    }
}

/// A component pre-linked against the host, with the bindings of the
/// contract version it implements.
#[derive(Clone)]
pub(super) enum ElementPre {
    /// A 0.1.0 component: calls convert to and from the internal types.
    V0_1(v0_1::ElementPluginPre<CallState>),
    /// A 0.2.0 component: calls use the internal types directly.
    V0_2(v0_2::ElementPluginPre<CallState>),
}

impl ElementPre {
    /// Checks `component` against the contract version it exports.
    pub(super) fn new(
        component: &Component,
        pre: InstancePre<CallState>,
    ) -> Result<Self, LoadError> {
        let version = ContractVersion::of(component)?;
        let mismatch = |e: wasmtime::Error| LoadError::Contract(format!("{version}: {e:#}"));
        Ok(match version {
            ContractVersion::V0_1 => {
                Self::V0_1(v0_1::ElementPluginPre::new(pre).map_err(mismatch)?)
            }
            ContractVersion::V0_2 => {
                Self::V0_2(v0_2::ElementPluginPre::new(pre).map_err(mismatch)?)
            }
        })
    }

    /// The contract version of the component.
    pub(super) fn version(&self) -> ContractVersion {
        match self {
            ElementPre::V0_1(_) => ContractVersion::V0_1,
            ElementPre::V0_2(_) => ContractVersion::V0_2,
        }
    }
}
