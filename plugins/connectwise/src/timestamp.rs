//! A minimal RFC 3339 timestamp: parsing, comparing, and formatting in UTC.
//!
//! ConnectWise writes `2024-05-01T12:00:00Z`; the host writes poll windows the
//! same way, sometimes with fractional seconds. This covers exactly RFC 3339
//! (`T` or space separator, optional fraction, `Z` or `±HH:MM` offset) without
//! pulling a date crate into the guest.

/// An instant as seconds and nanoseconds since the Unix epoch, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    seconds: i64,
    /// Nanoseconds within the second, below 1 000 000 000.
    nanos: u32,
}

impl Timestamp {
    /// Parses an RFC 3339 date-time, e.g. `2024-05-01T12:00:00.5+02:00`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut cursor = Cursor(text.as_bytes());
        let year = i64::from(cursor.digits(4)?);
        cursor.expect(b'-')?;
        let month = cursor.digits(2)?;
        cursor.expect(b'-')?;
        let day = cursor.digits(2)?;
        cursor.one_of(b"Tt ")?;
        let hour = cursor.digits(2)?;
        cursor.expect(b':')?;
        let minute = cursor.digits(2)?;
        cursor.expect(b':')?;
        // A leap second (:60) is counted as the last second of its minute.
        let second = cursor.digits(2)?.min(59);
        let nanos = if cursor.peek() == Some(b'.') {
            cursor.0 = &cursor.0[1..];
            cursor.fraction()?
        } else {
            0
        };
        let offset_seconds = match cursor.peek()? {
            b'Z' | b'z' => {
                cursor.0 = &cursor.0[1..];
                0
            }
            sign @ (b'+' | b'-') => {
                cursor.0 = &cursor.0[1..];
                let hours = cursor.digits(2)?;
                cursor.expect(b':')?;
                let minutes = cursor.digits(2)?;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = i64::from(hours * 3600 + minutes * 60);
                if sign == b'-' {
                    -offset
                } else {
                    offset
                }
            }
            _ => return None,
        };
        if !cursor.0.is_empty()
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let seconds =
            days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
        Some(Self { seconds, nanos })
    }

    /// Formats the instant as `YYYY-MM-DDTHH:MM:SSZ`, dropping any fraction.
    pub fn to_utc_seconds(self) -> String {
        let days = self.seconds.div_euclid(86_400);
        let in_day = self.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            in_day / 3600,
            in_day % 3600 / 60,
            in_day % 60
        )
    }

    /// The distance between two instants, in nanoseconds.
    pub fn abs_diff_nanos(self, other: Self) -> u128 {
        let nanos = |t: Self| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
        (nanos(self) - nanos(other)).unsigned_abs()
    }
}

/// A forward-only reader over the bytes of a timestamp.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// The next byte, without consuming it.
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Consumes `byte`, or fails.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.one_of(&[byte])
    }

    /// Consumes one of `bytes`, or fails.
    fn one_of(&mut self, bytes: &[u8]) -> Option<()> {
        let (&first, rest) = self.0.split_first()?;
        bytes.contains(&first).then(|| self.0 = rest)
    }

    /// Consumes exactly `count` ASCII digits and returns their value.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(count)?;
        let mut value = 0u32;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.0 = rest;
        Some(value)
    }

    /// Consumes one or more digits of a fraction of a second, as nanoseconds
    /// (digits past the ninth are dropped).
    fn fraction(&mut self) -> Option<u32> {
        let count = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        let mut nanos = 0u32;
        for position in 0..9 {
            let digit = self.0.get(position).filter(|_| position < count);
            nanos = nanos * 10 + digit.map_or(0, |&b| u32::from(b - b'0'));
        }
        self.0 = &self.0[count..];
        Some(nanos)
    }
}

/// Whether `year` is a leap year of the proleptic Gregorian calendar.
fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days in `month` (1–12) of `year`.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn parses_utc_and_formats_back() {
        assert_eq!(ts("1970-01-01T00:00:00Z").seconds, 0);
        assert_eq!(ts("2024-05-01T12:00:00Z").seconds, 1_714_564_800);
        assert_eq!(
            ts("2024-02-29T23:59:59Z").to_utc_seconds(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(
            ts("1969-12-31T23:59:59Z").to_utc_seconds(),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn offsets_and_fractions_are_applied() {
        assert_eq!(ts("2024-05-01T14:00:00+02:00"), ts("2024-05-01T12:00:00Z"));
        assert_eq!(ts("2024-05-01t07:30:00-04:30"), ts("2024-05-01T12:00:00z"));
        let fractional = ts("2024-05-01T12:00:00.123456789123Z");
        assert_eq!(fractional.nanos, 123_456_789);
        assert_eq!(fractional.to_utc_seconds(), "2024-05-01T12:00:00Z");
        assert_eq!(ts("2024-05-01 12:00:00.5Z").nanos, 500_000_000);
        assert_eq!(
            ts("2024-12-31T23:30:00-01:00").to_utc_seconds(),
            "2025-01-01T00:30:00Z"
        );
    }

    #[test]
    fn differences_are_exact() {
        let a = ts("2024-05-01T12:00:00Z");
        let b = ts("2024-05-01T12:00:01.25Z");
        assert_eq!(a.abs_diff_nanos(b), 1_250_000_000);
        assert_eq!(b.abs_diff_nanos(a), 1_250_000_000);
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00Zjunk",
            "24-05-01T12:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_none(), "{bad:?} should not parse");
        }
    }
}
