//! Receipt and notification ids as time bounds.
//!
//! Receipt ids (and the ids of the notifications plugboard makes) are
//! UUIDv7, whose text sorts by the millisecond they were generated, so a
//! time bound becomes an id bound and pruning scans walk a primary key.

/// Largest millisecond count a UUIDv7 can hold (48 bits).
const MAX_V7_MILLIS: i64 = (1 << 48) - 1;

/// The smallest UUIDv7 text of the millisecond `ms`: every id generated in
/// that millisecond or later sorts at or above it, every earlier one below.
pub(super) fn id_floor(ms: i64) -> String {
    let ms = ms.clamp(0, MAX_V7_MILLIS);
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

/// A fresh UUIDv7 for something that happened at `t` (rather than when
/// it is written), so its id sorts where `t` does: the 12 bits after the
/// millisecond hold the fraction of the millisecond (RFC 9562's method 3),
/// so two things that happened within one millisecond sort in the order
/// they happened too.
pub(super) fn id_at(t: time::OffsetDateTime) -> String {
    let nanos = t.unix_timestamp_nanos().max(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::ContextV7::new().with_additional_precision(),
        u64::try_from(nanos / 1_000_000_000).unwrap_or_default(),
        u32::try_from(nanos % 1_000_000_000).unwrap_or_default(),
    );
    uuid::Uuid::new_v7(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_floor_brackets_the_ids_of_its_millisecond() {
        for _ in 0..100 {
            let id = uuid::Uuid::now_v7();
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            let ms = i64::try_from(secs).unwrap() * 1000 + i64::from(nanos / 1_000_000);
            let id = id.to_string();
            assert!(id_floor(ms) <= id, "{id} vs {}", id_floor(ms));
            assert!(id < id_floor(ms + 1));
        }
        assert_eq!(id_floor(-5), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn ids_at_times_within_one_millisecond_sort_by_time() {
        let start = time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let ids: Vec<String> = (0..100)
            .map(|i| id_at(start + time::Duration::microseconds(i * 10)))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|id| id_floor(1_790_000_000_000) <= *id));
        assert!(ids.iter().all(|id| *id < id_floor(1_790_000_000_001)));
    }
}
