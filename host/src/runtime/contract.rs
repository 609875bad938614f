//! The contract versions the host serves, and which one a component
//! implements: found at load from its export
//! `plugboard:element/element@<version>`, newest first. Each pre-linked
//! component keeps the bindings of its version; calls dispatch on that with
//! one `match`. Before anything is called, every export is type-checked
//! against its version ([`check_exports`]), so a mismatch names the export
//! and the types.

use serde::Serialize;
use wasmtime::component::types::{self, Type};
use wasmtime::component::{Component, ComponentNamedList, Instance, InstancePre, Lift, Lower};
use wasmtime::Store;

use super::bindings::{v0_1, v0_2};
use super::state::CallState;
use super::LoadError;

/// A version of the `plugboard:element` contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ContractVersion {
    /// `plugboard:element@0.1.0`: the first contract.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `plugboard:element@0.2.0`: adds `element-info.default-poll-configuration`,
    /// `element-info.stateless`, the clock, hex and `https-send` host
    /// functions, and the optional `subscription` interface.
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

    /// The component pre-linked against the host, without the bindings.
    pub(super) fn instance_pre(&self) -> &InstancePre<CallState> {
        match self {
            ElementPre::V0_1(pre) => pre.instance_pre(),
            ElementPre::V0_2(pre) => pre.instance_pre(),
        }
    }

    /// Whether the component implements the optional subscription
    /// interface (a 0.2.0 component that exports it).
    pub(super) fn subscribes(&self) -> bool {
        self.version() != ContractVersion::V0_1
            && exports_subscription(self.instance_pre().component())
    }

    /// The contract version of the component.
    pub(super) fn version(&self) -> ContractVersion {
        match self {
            ElementPre::V0_1(_) => ContractVersion::V0_1,
            ElementPre::V0_2(_) => ContractVersion::V0_2,
        }
    }
}

/// The optional interface through which an element registers instances'
/// inbound URLs at the vendor (0.2.0 and later).
pub(super) const SUBSCRIPTION_EXPORT: &str = "plugboard:element/subscription@0.2.0";

/// Whether `component` implements the optional subscription interface.
pub(super) fn exports_subscription(component: &Component) -> bool {
    component
        .get_export_index(None, SUBSCRIPTION_EXPORT)
        .is_some()
}

/// Every export of the element and subscription interfaces, with its
/// signature as the WIT states it (the same in every version served).
const SIGNATURES: [(&str, &str); 6] = [
    ("describe", "func() -> element-info"),
    (
        "webhook",
        "func(config: config, request: http-request) -> result<webhook-outcome, element-error>",
    ),
    (
        "prepare-poll",
        "func(config: config, poll: poll-context, draft: http-request) \
         -> result<http-request, element-error>",
    ),
    (
        "map-poll",
        "func(config: config, poll: poll-context, response: http-response) \
         -> result<poll-page, element-error>",
    ),
    (
        "subscribe",
        "func(config: config, callback-url: string, previous: option<string>) \
         -> result<string, element-error>",
    ),
    (
        "unsubscribe",
        "func(config: config, remembered: string) -> result<_, element-error>",
    ),
];

/// Type-checks one export of `instance`'s element interface against the
/// Rust types of its contract version, naming the export and the mismatch.
fn check_export<P, R>(
    store: &mut Store<CallState>,
    instance: &Instance,
    version: ContractVersion,
    name: &str,
) -> Result<(), LoadError>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    check_interface_export::<P, R>(store, instance, version, version.export_name(), name)
}

/// Type-checks the export `name` of `instance`'s interface `interface`
/// against the Rust types `P` and `R`, naming the export and the mismatch.
fn check_interface_export<P, R>(
    store: &mut Store<CallState>,
    instance: &Instance,
    version: ContractVersion,
    interface: &str,
    name: &str,
) -> Result<(), LoadError>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    let wanted = SIGNATURES
        .iter()
        .find(|(export, _)| *export == name)
        .map_or("", |(_, signature)| signature);
    let func = instance
        .get_export_index(&mut *store, None, interface)
        .and_then(|interface| instance.get_export_index(&mut *store, Some(&interface), name))
        .and_then(|index| instance.get_func(&mut *store, index))
        .ok_or_else(|| {
            LoadError::Contract(format!(
                "{version}: the component does not export the function `{name}` \
                 (the contract wants `{name}: {wanted}`)"
            ))
        })?;
    match func.typed::<P, R>(&*store) {
        Ok(_) => Ok(()),
        Err(mismatch) => Err(LoadError::Contract(format!(
            "{version}: export `{name}`: {mismatch:#}; the component's is `{name}: {}`, \
             the contract wants `{name}: {wanted}`",
            signature(&func.ty(&*store))
        ))),
    }
}

/// Checks every export of the element interface of `instance` against
/// `version`, before anything is called: a mismatch names the export and
/// the types, instead of surfacing as a trap of whichever call comes first.
pub(super) fn check_exports(
    store: &mut Store<CallState>,
    instance: &Instance,
    version: ContractVersion,
) -> Result<(), LoadError> {
    macro_rules! check {
        ($t:path) => {{
            use $t as t;
            type Config = Vec<(String, String)>;
            type Fails<T> = (Result<T, t::ElementError>,);
            check_export::<(), (t::ElementInfo,)>(store, instance, version, "describe")?;
            check_export::<(Config, t::HttpRequest), Fails<t::WebhookOutcome>>(
                store, instance, version, "webhook",
            )?;
            check_export::<(Config, t::PollContext, t::HttpRequest), Fails<t::HttpRequest>>(
                store,
                instance,
                version,
                "prepare-poll",
            )?;
            check_export::<(Config, t::PollContext, t::HttpResponse), Fails<t::PollPage>>(
                store, instance, version, "map-poll",
            )
        }};
    }
    match version {
        ContractVersion::V0_1 => check!(v0_1::plugboard::element::types),
        ContractVersion::V0_2 => check!(v0_2::plugboard::element::types),
    }
}

/// Checks both exports of the optional subscription interface, for a
/// component that exports it.
pub(super) fn check_subscription_exports(
    store: &mut Store<CallState>,
    instance: &Instance,
    version: ContractVersion,
) -> Result<(), LoadError> {
    use v0_2::plugboard::element::types::ElementError;
    type Config = Vec<(String, String)>;
    check_interface_export::<(Config, String, Option<String>), (Result<String, ElementError>,)>(
        store,
        instance,
        version,
        SUBSCRIPTION_EXPORT,
        "subscribe",
    )?;
    check_interface_export::<(Config, String), (Result<(), ElementError>,)>(
        store,
        instance,
        version,
        SUBSCRIPTION_EXPORT,
        "unsubscribe",
    )
}

/// A component function's type in WIT-like text: parameter names and the
/// shape of each type (records and variants by their field and case names).
fn signature(func: &types::ComponentFunc) -> String {
    let params: Vec<String> = func
        .params()
        .map(|(name, ty)| format!("{name}: {}", shape(&ty)))
        .collect();
    let results: Vec<String> = func.results().map(|ty| shape(&ty)).collect();
    match results.as_slice() {
        [] => format!("func({})", params.join(", ")),
        [one] => format!("func({}) -> {one}", params.join(", ")),
        many => format!("func({}) -> ({})", params.join(", "), many.join(", ")),
    }
}

/// The shape of one component type, e.g. `result<variant {accepted,
/// respond}, variant {bad-request, …}>` or `record {key, aliases, …}`.
fn shape(ty: &Type) -> String {
    let opt = |ty: Option<Type>| ty.as_ref().map_or_else(|| "_".to_owned(), shape);
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(list) => format!("list<{}>", shape(&list.ty())),
        Type::Option(option) => format!("option<{}>", shape(&option.ty())),
        Type::Result(result) => format!("result<{}, {}>", opt(result.ok()), opt(result.err())),
        Type::Tuple(tuple) => {
            let types: Vec<String> = tuple.types().map(|ty| shape(&ty)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Record(record) => {
            let names: Vec<&str> = record.fields().map(|field| field.name).collect();
            format!("record {{{}}}", names.join(", "))
        }
        Type::Variant(variant) => {
            let names: Vec<&str> = variant.cases().map(|case| case.name).collect();
            format!("variant {{{}}}", names.join(", "))
        }
        Type::Enum(cases) => format!("enum {{{}}}", cases.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(flags) => format!("flags {{{}}}", flags.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) | Type::Borrow(_) => "resource".into(),
        _ => "an async or unsupported type".into(),
    }
}
