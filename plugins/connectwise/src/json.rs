//! Small helpers for reading vendor JSON.

use serde_json::Value;

/// The value at a dotted `path` (e.g. `_info.lastUpdated`), unless it is
/// missing or `null`.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| current.get(segment))
        .filter(|found| !found.is_null())
}

/// The string at a dotted `path`, if it is a non-empty string.
pub fn lookup_str<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    lookup(value, path)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// An identifier as text: a JSON number or a non-empty string.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

/// A number of seconds or a count given as a JSON number or a numeric string.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn looks_up_dotted_paths() {
        let value =
            json!({"_info": {"lastUpdated": "2024-01-01T00:00:00Z", "gone": null}, "empty": ""});
        assert_eq!(
            lookup_str(&value, "_info.lastUpdated"),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(lookup(&value, "_info.gone"), None);
        assert_eq!(lookup(&value, "_info.lastUpdated.deeper"), None);
        assert_eq!(lookup_str(&value, "empty"), None);
    }

    #[test]
    fn renders_ids_and_numbers() {
        assert_eq!(id_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(id_text(&json!("A-7")).as_deref(), Some("A-7"));
        assert_eq!(id_text(&json!("")), None);
        assert_eq!(id_text(&json!(true)), None);
        assert_eq!(number(&json!(" 15 ")), Some(15.0));
        assert_eq!(number(&json!(2.5)), Some(2.5));
        assert_eq!(number(&json!("x")), None);
    }
}
