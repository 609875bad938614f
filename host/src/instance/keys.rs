//! Configuration keys nobody reads: a key that is neither one of
//! plugboard's `event.*` settings nor declared by the element's
//! `describe()` is kept (Cloud Elements accepts such keys too) but named in
//! a warning, with the closest known key, so a typo does not go unnoticed.

use serde::Serialize;
use serde_json::{Map, Value};

use super::settings::EVENT_KEYS;
use crate::runtime::ElementDescription;

/// Least similarity (normalized Damerau–Levenshtein, 0–1) for a known key
/// to be suggested.
const SUGGEST_FROM: f64 = 0.6;

/// A configuration key that will be stored but is not read by anyone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyWarning {
    /// The key as a request field, e.g. `configuration.event.notification.enabeld`.
    pub field: String,
    /// What is wrong, naming the closest known key if one is close.
    pub message: String,
    /// The closest known key, if one is close.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// Warnings for the keys of `configuration` among `keys` that nobody reads.
pub fn unknown<'a>(
    element: &ElementDescription,
    configuration: &Map<String, Value>,
    keys: impl IntoIterator<Item = &'a String>,
) -> Vec<KeyWarning> {
    let declared = element.config_keys.iter().map(|k| k.name.as_str());
    unknown_among(&element.key, declared, configuration, keys)
}

/// [`unknown`] with the element's key and declared keys given apart.
fn unknown_among<'a, 'b>(
    element_key: &str,
    declared: impl Iterator<Item = &'b str>,
    configuration: &Map<String, Value>,
    keys: impl IntoIterator<Item = &'a String>,
) -> Vec<KeyWarning> {
    let known: Vec<&str> = EVENT_KEYS.iter().copied().chain(declared).collect();
    keys.into_iter()
        .filter(|k| configuration.contains_key(*k) && !known.contains(&k.as_str()))
        .map(|key| {
            let suggestion = known
                .iter()
                .map(|k| (strsim::normalized_damerau_levenshtein(key, k), *k))
                .filter(|(score, _)| *score >= SUGGEST_FROM)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| k.to_string());
            let hint = suggestion
                .as_deref()
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            KeyWarning {
                field: format!("configuration.{key}"),
                message: format!(
                    "{key} is not an event setting nor a key element {} declares: it is stored \
                     but nothing reads it{hint}",
                    element_key
                ),
                suggestion,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_unknown_keys_with_the_closest_known_one() {
        let config = json!({
            "event.notification.enabeld": true,
            "helpdesk.connectwise.compnay": "acme",
            "helpdesk.connectwise.company": "acme",
            "event.notification.enabled": true,
            "zzz": 1,
        });
        let config = config.as_object().unwrap();
        let declared = ["helpdesk.connectwise.company"].into_iter();
        let warnings = unknown_among("cw", declared, config, config.keys());
        let found: Vec<(&str, Option<&str>)> = warnings
            .iter()
            .map(|w| (w.field.as_str(), w.suggestion.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "configuration.event.notification.enabeld",
                    Some("event.notification.enabled")
                ),
                (
                    "configuration.helpdesk.connectwise.compnay",
                    Some("helpdesk.connectwise.company")
                ),
                ("configuration.zzz", None),
            ]
        );
        assert!(warnings[0]
            .message
            .contains("did you mean event.notification.enabled?"));
    }
}
