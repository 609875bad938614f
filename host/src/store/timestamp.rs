//! How the store writes times down.
//!
//! Every time plugboard stamps itself (creation, update, receipt) is kept as
//! unix milliseconds in an `INTEGER` column: compact, and ordered by plain
//! integer comparison, which de-duplication windows rely on. Times are
//! handed out as [`OffsetDateTime`] and rendered as RFC 3339 in UTC.

use serde::Serializer;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::error::{Result, StoreError};

/// The current time, cut to the millisecond precision the store keeps, so a
/// value handed out before writing equals the value read back.
pub(super) fn now() -> OffsetDateTime {
    from_millis(to_millis(OffsetDateTime::now_utc())).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Unix milliseconds of `t` (sub-millisecond parts are dropped).
pub(super) fn to_millis(t: OffsetDateTime) -> i64 {
    let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// The UTC time `ms` unix milliseconds name.
pub(super) fn from_millis(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::corrupt(format!("timestamp {ms}: {e}")))
}

/// `t` as RFC 3339 text in UTC, the form times are rendered in.
pub(super) fn to_rfc3339(t: OffsetDateTime) -> Result<String> {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| StoreError::invalid_value(format!("date {t} as RFC 3339: {e}")))
}

/// Serializes a time as RFC 3339 in UTC (`serialize_with` helper).
pub(super) fn serialize_rfc3339<S: Serializer>(
    t: &OffsetDateTime,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let text = to_rfc3339(*t).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn millis_round_trip_drops_only_sub_millisecond_parts() {
        let t = datetime!(2024-05-01 12:00:00.123_456 UTC);
        let back = from_millis(to_millis(t)).unwrap();
        assert_eq!(back, datetime!(2024-05-01 12:00:00.123 UTC));
        assert_eq!(to_millis(datetime!(1969-12-31 23:59:59.9995 UTC)), -1);
    }

    #[test]
    fn now_survives_a_round_trip_unchanged() {
        let t = now();
        assert_eq!(from_millis(to_millis(t)).unwrap(), t);
    }

    #[test]
    fn vendor_dates_are_normalized_to_utc() {
        let t = datetime!(2024-05-01 14:00:00 +02:00);
        assert_eq!(to_rfc3339(t).unwrap(), "2024-05-01T12:00:00Z");
    }
}
