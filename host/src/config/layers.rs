//! The layers of `serve` settings and their merge, lowest first: the
//! defaults ([`Sections::default`]), the TOML config file, the environment
//! and flags (clap reads both; a flag wins over its variable).
//!
//! figment merges them: each layer becomes a nested dictionary in the shape
//! of [`Sections`] (flat names moved into their sections by
//! [`super::sections::FLAT`]), and the merged result is extracted into
//! [`Sections`] once, an error naming the key and the layer it came from.

use std::path::Path;

use anyhow::{bail, Context as _};
use figment::providers::Serialized;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::args::ServeArgs;
use super::sections::{Sections, FLAT};

/// How messages name a setting: its file key, variable and flag.
pub fn named(key: &str) -> String {
    format!(
        "{key} (PLUGBOARD_{}, --{})",
        key.to_ascii_uppercase(),
        key.replace('_', "-")
    )
}

/// Reads a config file. Unknown keys and values of the wrong type are
/// refused with the file, line and key at fault.
fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("config file {}: cannot read it", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

/// One layer for figment: a nested dictionary in the shape of [`Sections`],
/// and the name errors give it.
struct Layer {
    name: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

impl Layer {
    /// `args` as a nested dictionary named `name`: its sections as given,
    /// then each flat setting it sets moved into its section. A setting
    /// given both ways is refused.
    fn from_args(name: String, args: &ServeArgs) -> anyhow::Result<Self> {
        let mut dict = Dict::new();
        let sections = [
            ("server", &args.server),
            ("runtime", &args.runtime),
            ("outbound", &args.outbound),
            ("management", &args.management),
            ("ingress", &args.ingress),
            ("delivery", &args.delivery),
            ("poller", &args.poller),
            ("store", &args.store),
            ("cluster", &args.cluster),
        ];
        for (section, given) in sections {
            if let Some(given) = given {
                dict.insert(section.into(), Value::serialize(given)?);
            }
        }
        let Value::Dict(_, mut flat) = Value::serialize(args)? else {
            bail!("settings do not serialize to a table");
        };
        // Secrets serialize redacted; the layer needs their value.
        for (key, secret) in [
            ("user_secret", &args.user_secret),
            ("organization_secret", &args.organization_secret),
            ("database_url", &args.database_url),
        ] {
            if let Some(secret) = secret {
                flat.insert(key.into(), secret.expose().into());
            }
        }
        for (flat_key, section, key) in FLAT {
            let Some(value) = flat.remove(*flat_key).filter(|v| !is_unset(v)) else {
                continue;
            };
            let entry = dict
                .entry(section.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            let Value::Dict(_, section_dict) = entry else {
                bail!("{name}: [{section}] must be a table");
            };
            if section_dict.insert(key.to_string(), value).is_some() {
                bail!(
                    "{name}: {} is set twice, as `{flat_key}` and as `{key}` in [{section}]",
                    named(flat_key)
                );
            }
        }
        Ok(Self { name, dict })
    }
}

/// Whether a serialized field is an unset `Option`.
fn is_unset(value: &Value) -> bool {
    matches!(value, Value::Empty(..))
}

/// The settings of `args` (environment and flags) over the config file it
/// names (if any) over the defaults.
pub fn merge(args: &ServeArgs) -> anyhow::Result<Sections> {
    let mut figment = Figment::from(Serialized::defaults(Sections::default()));
    if let Some(path) = &args.config {
        let file = read_file(path)?;
        let name = format!("config file {}", path.display());
        figment = figment.merge(Layer::from_args(name, &file)?);
    }
    let upper = Layer::from_args("the environment or command line".into(), args)?;
    figment
        .merge(upper)
        .extract()
        .map_err(|e| anyhow::anyhow!("{e}"))
}
