//! The poll configuration of an instance's resources (SEED 004), parsed and
//! checked once: `event.poller.configuration` (a JSON object, or that object
//! as a JSON string) and the legacy `event.poller.urls` lines
//! (`resource|url|xPathFilter|updatedField|updatedFormat|updatedZone|createdField|createdFormat|createdZone`).
//! A resource named in both takes the object's configuration.
//!
//! Keys of one resource: `url` (a template, see [`template`]),
//! `idField` (dotted path, default `id`), `datesConfiguration`
//! (`updatedDateField`, `updatedDateFormat`, `updatedDateTimezone`,
//! `createdDateField`, `createdDateFormat`, `createdDateTimezone`),
//! `filterByUpdatedDate` (default true), `filterByCurrentDate` (default
//! false), `createdCheckTolerance` and `pollDelay` (seconds, default 0),
//! `pageSize`, `recordsField` (dotted path to the records in an object
//! answer; the legacy `xPathFilter` fills it) and `timezone` (the zone of
//! `${date:…}`; default the updated date's zone, else UTC). Other keys are
//! kept for the element plugin, which receives the resource's object as is.
//! Values may be strings (`"true"`, `"100"`).

use serde_json::{json, Map, Value};
use time::Duration;

pub mod pattern;
pub mod template;
pub mod zone;

use super::ConfigError;
use pattern::JavaPattern;
use template::UrlTemplate;
use zone::Zone;

/// Key of the per-resource configuration object.
pub const CONFIGURATION_KEY: &str = "event.poller.configuration";
/// Key of the legacy line format.
pub const URLS_KEY: &str = "event.poller.urls";

/// One polled resource.
#[derive(Clone, Debug)]
pub struct Resource {
    /// Its name, e.g. `tickets`.
    pub name: String,
    /// The URL template (`None`: the element plugin knows the URL).
    pub url: Option<UrlTemplate>,
    /// Path of the record id.
    pub id_field: String,
    /// Where and how records carry their update date.
    pub updated: Option<DateField>,
    /// Where and how records carry their creation date.
    pub created: Option<DateField>,
    /// Skip records not updated since the window start.
    pub filter_by_updated_date: bool,
    /// Skip records updated after the window end (the next poll reads them).
    pub filter_by_current_date: bool,
    /// Created and updated this close count as the same instant.
    pub created_tolerance: Duration,
    /// Records per page, when the vendor pages by `page`/`pageSize`.
    pub page_size: Option<u32>,
    /// Subtracted from the checkpoint to start the window.
    pub poll_delay: Duration,
    /// The zone of `${date:…}`.
    pub zone: Zone,
    /// Path of the records array inside an object answer.
    pub records_field: Option<String>,
    /// The resource's configuration object as JSON text, for the plugin.
    pub config_json: String,
}

/// A date inside a record.
#[derive(Clone, Debug)]
pub struct DateField {
    /// Dotted path, e.g. `_info.lastUpdated`.
    pub path: String,
    /// Its Java pattern; `None` reads RFC 3339 text or epoch milliseconds.
    pub pattern: Option<JavaPattern>,
    /// The zone of dates without an offset.
    pub zone: Zone,
}

/// A resource's name and configuration object.
type Named = (String, Map<String, Value>);

/// Every configured resource of an instance, by name; empty when polling is
/// not configured. The error names the field at fault.
pub fn parse_all(configuration: &Map<String, Value>) -> Result<Vec<Resource>, ConfigError> {
    let mut objects: Vec<Named> = legacy_lines(configuration)?;
    if let Some(by_name) = configuration_object(configuration)? {
        for (name, value) in by_name {
            let Value::Object(object) = value else {
                return Err(field_error(&name, "", "must be a JSON object"));
            };
            objects.retain(|(n, _)| n != &name);
            objects.push((name, object));
        }
    }
    objects
        .into_iter()
        .map(|(name, object)| Resource::parse(&name, &object))
        .collect()
}

/// The resources of one `event.poller.configuration` object (resource name
/// → its configuration), such as an element's default poll configuration.
pub fn parse_object(by_name: &Map<String, Value>) -> Result<Vec<Resource>, ConfigError> {
    let mut configuration = Map::new();
    configuration.insert(CONFIGURATION_KEY.into(), Value::Object(by_name.clone()));
    parse_all(&configuration)
}

fn configuration_object(
    configuration: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, ConfigError> {
    let not_object = || ConfigError::new(CONFIGURATION_KEY, "must be a JSON object");
    match configuration.get(CONFIGURATION_KEY) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o.clone())),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(o)) => Ok(Some(o)),
            _ => Err(not_object()),
        },
        Some(_) => Err(not_object()),
    }
}

/// The legacy lines as resource objects.
fn legacy_lines(configuration: &Map<String, Value>) -> Result<Vec<Named>, ConfigError> {
    let Some(text) = configuration.get(URLS_KEY).and_then(Value::as_str) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 2 || cells[0].is_empty() || cells[1].is_empty() {
            return Err(ConfigError::new(
                URLS_KEY,
                format!(
                    "line {}: expected resource|url|xPathFilter|updatedField|…",
                    n + 1
                ),
            ));
        }
        let cell = |i: usize| cells.get(i).copied().filter(|c| !c.is_empty());
        let mut object = Map::new();
        object.insert("url".into(), json!(cells[1]));
        if let Some(path) = cell(2) {
            let path = path
                .trim_start_matches("$.")
                .trim_matches('/')
                .replace('/', ".");
            object.insert("recordsField".into(), json!(path));
        }
        let mut dates = Map::new();
        for (i, key) in [
            "updatedDateField",
            "updatedDateFormat",
            "updatedDateTimezone",
            "createdDateField",
            "createdDateFormat",
            "createdDateTimezone",
        ]
        .iter()
        .enumerate()
        {
            if let Some(value) = cell(3 + i) {
                dates.insert((*key).into(), json!(value));
            }
        }
        if !dates.is_empty() {
            object.insert("datesConfiguration".into(), Value::Object(dates));
        }
        out.push((cells[0].to_string(), object));
    }
    Ok(out)
}

/// `configuration.event.poller.configuration.<resource>[.<key>]`.
fn field_error(resource: &str, key: &str, message: impl Into<String>) -> ConfigError {
    let suffix = if key.is_empty() {
        String::new()
    } else {
        format!(".{key}")
    };
    ConfigError::new(&format!("{CONFIGURATION_KEY}.{resource}{suffix}"), message)
}

impl Resource {
    fn parse(name: &str, object: &Map<String, Value>) -> Result<Self, ConfigError> {
        let err = |key: &str, message: String| field_error(name, key, message);
        if name.trim().is_empty() {
            return Err(ConfigError::new(
                CONFIGURATION_KEY,
                "resource names must not be empty",
            ));
        }
        let url = match text(object.get("url")) {
            Some(u) => Some(UrlTemplate::parse(&u).map_err(|e| err("url", e))?),
            None => None,
        };
        let dates = match object.get("datesConfiguration") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => return Err(err("datesConfiguration", "must be a JSON object".into())),
        };
        let date_field = |prefix: &str| -> Result<Option<DateField>, ConfigError> {
            let key = |k: &str| format!("{prefix}Date{k}");
            let Some(path) = text(dates.get(&key("Field"))) else {
                return Ok(None);
            };
            let dates_err = |k: &str, m: String| err(&format!("datesConfiguration.{}", key(k)), m);
            let pattern = match text(dates.get(&key("Format"))) {
                Some(p) => {
                    let pattern = JavaPattern::new(&p).map_err(|e| dates_err("Format", e))?;
                    if !pattern.has_date() {
                        return Err(dates_err(
                            "Format",
                            format!("{p:?} does not name a whole date"),
                        ));
                    }
                    Some(pattern)
                }
                None => None,
            };
            let zone = match text(dates.get(&key("Timezone"))) {
                Some(z) => Zone::parse(&z).map_err(|e| dates_err("Timezone", e))?,
                None => Zone::UTC,
            };
            Ok(Some(DateField {
                path,
                pattern,
                zone,
            }))
        };
        let updated = date_field("updated")?;
        let created = date_field("created")?;
        let zone = match text(object.get("timezone")) {
            Some(z) => Zone::parse(&z).map_err(|e| err("timezone", e))?,
            None => updated.as_ref().map_or(Zone::UTC, |u| u.zone.clone()),
        };
        let seconds = |key: &str| -> Result<Duration, ConfigError> {
            match number(object.get(key)) {
                Ok(None) => Ok(Duration::ZERO),
                Ok(Some(s)) if s.is_finite() && s >= 0.0 => Ok(Duration::seconds_f64(s)),
                _ => Err(err(key, "must be a non-negative number of seconds".into())),
            }
        };
        let page_size = match number(object.get("pageSize")) {
            Ok(None) => None,
            Ok(Some(n)) if n.fract() == 0.0 && (1.0..=100_000.0).contains(&n) => Some(n as u32),
            _ => {
                return Err(err(
                    "pageSize",
                    "must be a whole number from 1 to 100000".into(),
                ))
            }
        };
        let flag = |key: &str, default: bool| match boolean(object.get(key)) {
            Ok(v) => Ok(v.unwrap_or(default)),
            Err(()) => Err(err(key, "must be true or false".into())),
        };
        Ok(Self {
            name: name.to_string(),
            url,
            id_field: text(object.get("idField")).unwrap_or_else(|| "id".into()),
            updated,
            created,
            filter_by_updated_date: flag("filterByUpdatedDate", true)?,
            filter_by_current_date: flag("filterByCurrentDate", false)?,
            created_tolerance: seconds("createdCheckTolerance")?,
            page_size,
            poll_delay: seconds("pollDelay")?,
            zone,
            records_field: text(object.get("recordsField")),
            config_json: Value::Object(object.clone()).to_string(),
        })
    }
}

/// A non-empty string value.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// A number, or a string holding one.
fn number(value: Option<&Value>) -> Result<Option<f64>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// A boolean, or a string `true`/`false`.
fn boolean(value: Option<&Value>) -> Result<Option<bool>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(()),
        },
        Some(_) => Err(()),
    }
}

#[cfg(test)]
#[path = "resource_tests.rs"]
mod tests;
