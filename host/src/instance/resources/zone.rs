//! Time zones as poll configurations name them: `GMT`, `UTC`, fixed offsets
//! (`GMT+05:30`, `-08:00`) and IANA names (`America/New_York`), the last
//! resolved with the tz database compiled into the binary (`tzdb`, read
//! with `tz-rs`; dates stay `time` values), so a host without
//! `/usr/share/zoneinfo` behaves the same.
//!
//! Java's `TimeZone.getTimeZone` quietly turns an unknown name into GMT;
//! here an unknown name is an error, reported when the instance is saved.

use std::fmt;

use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use tz::datetime::FoundDateTimeKind;
use tz::{DateTime, TimeZoneRef};

/// A zone dates are written or read in.
#[derive(Clone)]
pub enum Zone {
    /// A fixed offset from UTC (UTC itself included).
    Fixed(UtcOffset),
    /// An IANA zone, with daylight saving time and historical changes.
    Named {
        /// The name as configured, e.g. `America/New_York`.
        name: Box<str>,
        /// The zone's rules from the compiled-in tz database.
        rules: TimeZoneRef<'static>,
    },
}

impl fmt::Debug for Zone {
    /// The offset or the zone's name (not its table of transitions).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Fixed(offset) => write!(f, "Fixed({offset})"),
            Zone::Named { name, .. } => write!(f, "Named({name})"),
        }
    }
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Fixed(UtcOffset::UTC);

    /// Parses a zone name; the error says what is wrong with it.
    pub fn parse(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("an empty time zone name".into());
        }
        let upper = name.to_ascii_uppercase();
        if matches!(
            upper.as_str(),
            "UTC" | "GMT" | "Z" | "UT" | "ETC/UTC" | "ETC/GMT" | "ZULU"
        ) {
            return Ok(Zone::UTC);
        }
        let offset_text = ["GMT", "UTC", "UT"]
            .iter()
            .find_map(|p| upper.strip_prefix(p))
            .filter(|rest| rest.starts_with(['+', '-']))
            .or_else(|| upper.starts_with(['+', '-']).then_some(upper.as_str()));
        if let Some(text) = offset_text {
            return parse_offset(text)
                .map(Zone::Fixed)
                .ok_or_else(|| format!("{name:?} is not a valid UTC offset"));
        }
        tzdb::tz_by_name(name)
            .map(|rules| Zone::Named {
                name: name.into(),
                rules,
            })
            .ok_or_else(|| format!("{name:?} is not a known time zone"))
    }

    /// The zone's offset from UTC at instant `t`.
    pub fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named { rules, .. } => rules
                .find_local_time_type(t.unix_timestamp())
                .ok()
                .and_then(|local| UtcOffset::from_whole_seconds(local.ut_offset()).ok())
                .unwrap_or(UtcOffset::UTC),
        }
    }

    /// `t` as the zone's wall clock shows it.
    pub fn local(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.to_offset(self.offset_at(t))
    }

    /// The instant the zone's wall clock shows as `local`. A time skipped by
    /// a daylight-saving change is moved forward by the gap and a repeated
    /// one takes its first occurrence, as `java.util.Calendar` does.
    pub fn resolve(&self, local: PrimitiveDateTime) -> Result<OffsetDateTime, String> {
        match self {
            Zone::Fixed(offset) => Ok(local.assume_offset(*offset)),
            Zone::Named { rules, .. } => {
                let found = DateTime::find(
                    local.year(),
                    u8::from(local.month()),
                    local.day(),
                    local.hour(),
                    local.minute(),
                    local.second(),
                    local.nanosecond(),
                    *rules,
                )
                .map_err(|e| format!("{local} is not a valid local time: {e}"))?;
                // Candidates come in time order: the first is the earlier of
                // a repeated time; a skipped one is read with the offset in
                // force before the change, which moves it forward by the gap.
                match found.into_inner().first() {
                    Some(FoundDateTimeKind::Normal(at)) => {
                        OffsetDateTime::from_unix_timestamp_nanos(at.total_nanoseconds())
                            .map_err(|e| e.to_string())
                    }
                    Some(FoundDateTimeKind::Skipped {
                        before_transition, ..
                    }) => {
                        let before = before_transition.local_time_type().ut_offset();
                        UtcOffset::from_whole_seconds(before)
                            .map(|offset| local.assume_offset(offset))
                            .map_err(|e| e.to_string())
                    }
                    None => Err(format!("{local} has no instant in its zone")),
                }
            }
        }
    }
}

/// `+5`, `+05`, `+0530`, `+05:30` (and `-…`) as an offset.
fn parse_offset(text: &str) -> Option<UtcOffset> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() > 2 => digits.split_at(digits.len() - 2),
        None => (digits, "0"),
    };
    let all_digits =
        |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || !all_digits(minutes) {
        return None;
    }
    let hours: i8 = hours.parse().ok()?;
    let minutes: i8 = minutes.parse().ok()?;
    if hours > 18 || minutes > 59 {
        return None;
    }
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::{datetime, offset};

    use super::*;

    #[test]
    fn names_and_offsets_parse() {
        assert_eq!(
            Zone::parse("GMT")
                .unwrap()
                .offset_at(datetime!(2024-01-01 0:00 UTC)),
            offset!(UTC)
        );
        let fixed = |name: &str| {
            Zone::parse(name)
                .unwrap()
                .offset_at(datetime!(2024-01-01 0:00 UTC))
        };
        assert_eq!(fixed("GMT+05:30"), offset!(+5:30));
        assert_eq!(fixed("UTC-8"), offset!(-8));
        assert_eq!(fixed("+0200"), offset!(+2));
        assert_eq!(fixed("Asia/Kolkata"), offset!(+5:30));
        for bad in ["", "Mars/Olympus_Mons", "GMT+25", "+5:7x"] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn named_zones_follow_daylight_saving() {
        let ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(ny.offset_at(datetime!(2024-01-15 12:00 UTC)), offset!(-5));
        assert_eq!(ny.offset_at(datetime!(2024-07-15 12:00 UTC)), offset!(-4));
        let local = datetime!(2024-07-15 08:00);
        assert_eq!(ny.resolve(local).unwrap(), datetime!(2024-07-15 12:00 UTC));
        // 02:30 on 10 March 2024 does not exist in New York: moved forward by the gap.
        let skipped = ny.resolve(datetime!(2024-03-10 02:30)).unwrap();
        assert_eq!(skipped, datetime!(2024-03-10 07:30 UTC));
        // 01:30 on 3 November 2024 happens twice: the first (still EDT) is taken.
        let repeated = ny.resolve(datetime!(2024-11-03 01:30)).unwrap();
        assert_eq!(repeated, datetime!(2024-11-03 05:30 UTC));
        assert_eq!(ny.local(repeated).offset(), offset!(-4));
        // Seconds and fractions survive the round trip.
        let precise = datetime!(2024-07-15 08:00:07.123456789);
        assert_eq!(
            ny.resolve(precise).unwrap(),
            datetime!(2024-07-15 12:00:07.123456789 UTC)
        );
    }

    #[test]
    fn zones_with_half_hour_and_southern_daylight_saving() {
        let adelaide = Zone::parse("Australia/Adelaide").unwrap();
        assert_eq!(
            adelaide.offset_at(datetime!(2024-01-15 0:00 UTC)),
            offset!(+10:30)
        );
        assert_eq!(
            adelaide.offset_at(datetime!(2024-07-15 0:00 UTC)),
            offset!(+9:30)
        );
        assert_eq!(
            format!("{adelaide:?}"),
            "Named(Australia/Adelaide)",
            "a zone prints its name, not its rules"
        );
    }
}
