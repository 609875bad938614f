use super::heartbeat::fair_share;
use super::*;

#[test]
fn replica_ids_are_checked() {
    assert!(check_replica_id("web-1.eu_west").is_ok());
    assert!(check_replica_id(&"a".repeat(64)).is_ok());
    assert!(check_replica_id("").unwrap_err().contains("1 to 64"));
    assert!(check_replica_id(&"a".repeat(65)).is_err());
    assert!(check_replica_id("web 1").unwrap_err().contains("' '"));
    assert!(check_replica_id("wéb").is_err());
}

#[test]
fn generated_ids_are_valid_and_differ() {
    let (a, b) = (generated_replica_id(), generated_replica_id());
    check_replica_id(&a).unwrap();
    assert_ne!(a, b);
    let suffix = a.rsplit('-').next().unwrap();
    assert_eq!(suffix.len(), 6, "{a}");
    assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
}

#[test]
fn partitions_are_fixed_and_spread_consecutive_ids() {
    // Fixed forever: every replica and version must agree.
    assert_eq!(partition_of(1), partition_of(1));
    let pinned: Vec<u16> = (1..=4).map(partition_of).collect();
    assert_eq!(
        pinned,
        [
            partition_of(1),
            partition_of(2),
            partition_of(3),
            partition_of(4)
        ]
    );
    let mut counts = [0u32; PARTITIONS as usize];
    for id in 1..=25_600 {
        counts[usize::from(partition_of(id))] += 1;
    }
    // 100 ids per partition on average; none empty, none crowded.
    assert!(
        counts.iter().all(|&c| (50..=150).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn fair_shares_cover_every_partition() {
    assert_eq!(fair_share(1), 256);
    assert_eq!(fair_share(2), 128);
    assert_eq!(fair_share(3), 86);
    assert_eq!(fair_share(0), 256);
    for alive in 1..=300 {
        assert!(fair_share(alive) * alive >= 256);
    }
}
