//! Poll URL templates (SEED 004): `${…}` variables filled from the start of
//! the poll window, i.e. the last successful poll less `pollDelay`.
//!
//! | variable | value |
//! |---|---|
//! | `${gmtDate:<pattern>}` | the window start in UTC, as the Java date pattern writes it |
//! | `${date:<pattern>}` | the same in the resource's zone (UTC unless configured) |
//! | `${dateTimeZone:<zone>}` | the window start in `<zone>` as `yyyy-MM-dd'T'HH:mm:ss.SSSXXX` |
//! | `${epoch}`, `${epoch:ms}` | unix milliseconds |
//! | `${epoch:s}`, `${epoch:us}` | unix seconds, microseconds |
//! | `${date}` (legacy) | the window start in UTC as `yyyy-MM-dd'T'HH:mm:ss'Z'` |
//!
//! Templates are parsed when the instance is saved, so an unknown variable
//! or a bad pattern is refused then. Filled values are percent-encoded
//! except for unreserved characters and `:`, so `+05:00` reaches the vendor
//! as an offset, not a space.

use time::OffsetDateTime;

use super::pattern::JavaPattern;
use super::zone::Zone;

/// The pattern `${dateTimeZone:…}` writes.
const ISO_PATTERN: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX";
/// The pattern the legacy `${date}` writes.
const LEGACY_PATTERN: &str = "yyyy-MM-dd'T'HH:mm:ss'Z'";

/// A parsed URL template.
#[derive(Clone, Debug)]
pub struct UrlTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    /// A date written by the pattern, in the given zone (`None`: the resource's).
    Date(JavaPattern, Option<Zone>),
    /// Unix time divided by this many nanoseconds.
    Epoch(i128),
}

impl UrlTemplate {
    /// Parses a template; the error names the variable at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                format!(
                    "`${{` at byte {} is never closed",
                    text.len() - rest.len() + start
                )
            })?;
            parts.push(variable(&after[..end])?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// The URL for a window starting at `since`; `local` is the resource's zone.
    pub fn fill(&self, since: OffsetDateTime, local: &Zone) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Date(pattern, zone) => encode_into(
                    &mut out,
                    &pattern.format(since, zone.as_ref().unwrap_or(local)),
                ),
                Part::Epoch(unit) => {
                    out.push_str(&(since.unix_timestamp_nanos().div_euclid(*unit)).to_string())
                }
            }
        }
        out
    }
}

/// One `${name[:argument]}`.
fn variable(inner: &str) -> Result<Part, String> {
    let (name, argument) = match inner.split_once(':') {
        Some((name, argument)) => (name.trim(), Some(argument)),
        None => (inner.trim(), None),
    };
    let pattern = |text: &str| JavaPattern::new(text).map_err(|e| format!("${{{inner}}}: {e}"));
    match (name, argument) {
        ("gmtDate", Some(p)) => Ok(Part::Date(pattern(p)?, Some(Zone::UTC))),
        ("date", Some(p)) => Ok(Part::Date(pattern(p)?, None)),
        ("date", None) => Ok(Part::Date(pattern(LEGACY_PATTERN)?, Some(Zone::UTC))),
        ("dateTimeZone", Some(zone)) => {
            let zone = Zone::parse(zone).map_err(|e| format!("${{{inner}}}: {e}"))?;
            Ok(Part::Date(pattern(ISO_PATTERN)?, Some(zone)))
        }
        ("epoch", None) => Ok(Part::Epoch(1_000_000)),
        ("epoch", Some(unit)) => match unit.trim() {
            "ms" => Ok(Part::Epoch(1_000_000)),
            "s" => Ok(Part::Epoch(1_000_000_000)),
            "us" => Ok(Part::Epoch(1_000)),
            other => Err(format!(
                "${{{inner}}}: epoch unit {other:?} is not one of s, ms, us"
            )),
        },
        ("gmtDate" | "dateTimeZone", None) => {
            Err(format!("${{{inner}}} needs an argument: ${{{name}:…}}"))
        }
        _ => Err(format!(
            "unknown variable ${{{inner}}}; known: gmtDate, date, dateTimeZone, epoch"
        )),
    }
}

/// Appends `value`, percent-encoding all but unreserved characters and `:`.
fn encode_into(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const SINCE: OffsetDateTime = datetime!(2024-03-05 14:07:09.042 UTC);

    fn fill(template: &str, local: &str) -> String {
        UrlTemplate::parse(template)
            .unwrap()
            .fill(SINCE, &Zone::parse(local).unwrap())
    }

    #[test]
    fn fills_every_variable() {
        assert_eq!(
            fill(
                "/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
                "America/New_York"
            ),
            "/contacts?where=lastUpdated>'2024-03-05T14:07:09Z'"
        );
        assert_eq!(
            fill("/x?d=${date:yyyy-MM-dd HH:mm}", "Asia/Kolkata"),
            "/x?d=2024-03-05%2019:37"
        );
        assert_eq!(
            fill("/x?d=${dateTimeZone:America/New_York}", "UTC"),
            "/x?d=2024-03-05T09:07:09.042-05:00"
        );
        assert_eq!(
            fill("/x?d=${dateTimeZone:Asia/Kolkata}", "UTC"),
            "/x?d=2024-03-05T19:37:09.042%2B05:30"
        );
        assert_eq!(
            fill("/x?t=${epoch}&s=${epoch:s}&u=${epoch:us}", "UTC"),
            "/x?t=1709647629042&s=1709647629&u=1709647629042000"
        );
        assert_eq!(
            fill("/x?since=${date}", "Asia/Kolkata"),
            "/x?since=2024-03-05T14:07:09Z"
        );
        assert_eq!(fill("/plain?a=$1", "UTC"), "/plain?a=$1");
    }

    #[test]
    fn refuses_unknown_variables_and_bad_patterns() {
        for (template, why) in [
            ("/x?${lastPoll}", "unknown variable ${lastPoll}"),
            ("/x?${gmtDate}", "needs an argument"),
            ("/x?${gmtDate:YYYY}", "week-based"),
            (
                "/x?${dateTimeZone:Nowhere/Special}",
                "not a known time zone",
            ),
            ("/x?${epoch:ns}", "not one of"),
            ("/x?${epoch", "never closed"),
        ] {
            let err = UrlTemplate::parse(template).unwrap_err();
            assert!(err.contains(why), "{template}: {err}");
        }
    }
}
