//! Leaving room for live traffic (`reinject --max-shard-load PCT`): a replay held to a share
//! of each target shard's write limit, per shard, instead of to one stream-wide rate.
//!
//! Kinesis takes at most 1,000 records and 1 MiB per second into one shard, and puts a
//! record into the shard whose hash key range holds the MD5 of its partition key (read as a
//! 128-bit big-endian number) or its explicit hash key. So a replay of hot keys meets the
//! limit of their shard long before a stream-wide rate would say so. With a [`ShardMap`]
//! (the target's open shards from ListShards) each record's shard is known before it is
//! sent, and each shard gets its own budget of `PCT`% of its limit.
//!
//! When Kinesis throttles a record anyway (`ProvisionedThroughputExceededException`: the
//! producers the replay shares the shard with take more than the rest), the shard's budget
//! is halved, and grows back by a tenth of the cap each second without throttling
//! (additive increase, multiplicative decrease, as TCP shares a link): the replay yields to
//! live traffic instead of retrying at the same rate.

use std::time::Duration;

use md5::{Digest, Md5};

/// Records per second one shard takes.
pub const SHARD_RECORDS_PER_SECOND: u64 = 1_000;
/// Bytes per second one shard takes (data and partition keys).
pub const SHARD_BYTES_PER_SECOND: u64 = 1024 * 1024;
/// The least share of its cap a throttled shard's budget falls to.
const FLOOR: f64 = 0.05;
/// What a second without throttling gives back, as a share of the cap.
const INCREASE: f64 = 0.1;

/// A share of each shard's write limit, 1 to 100 percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadShare(u8);

impl LoadShare {
    /// `percent` of each shard's limit; refused outside 1 to 100.
    pub fn new(percent: u8) -> Result<Self, String> {
        match percent {
            1..=100 => Ok(Self(percent)),
            other => Err(format!(
                "--max-shard-load takes 1 to 100 (percent of a shard's write limit), not {other}"
            )),
        }
    }

    /// The percentage.
    pub fn percent(self) -> u8 {
        self.0
    }

    /// Records per second per shard at this share (at least 1).
    pub fn records_per_second(self) -> u64 {
        (SHARD_RECORDS_PER_SECOND * u64::from(self.0) / 100).max(1)
    }

    /// Bytes per second per shard at this share.
    pub fn bytes_per_second(self) -> u64 {
        SHARD_BYTES_PER_SECOND * u64::from(self.0) / 100
    }

    /// How long `records` records of `bytes` bytes take into one shard at this share.
    pub fn duration(self, records: u64, bytes: u64) -> Duration {
        let by_records = records as f64 / self.records_per_second() as f64;
        let by_bytes = bytes as f64 / self.bytes_per_second() as f64;
        Duration::from_secs_f64(by_records.max(by_bytes))
    }
}

/// What `--max-shard-load` gives a sender: the share, and the target's open shards when the
/// replay started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLoad {
    /// The share of each shard's limit.
    pub share: LoadShare,
    /// The target's open shards.
    pub shards: ShardMap,
}

/// The hash key Kinesis places a record by: its explicit hash key, else the MD5 of its
/// partition key. `None` for an explicit hash key that is not a 128-bit decimal number
/// (Kinesis refuses such a record).
pub fn hash_key(partition_key: &str, explicit_hash_key: Option<&str>) -> Option<u128> {
    match explicit_hash_key {
        Some(explicit) => explicit.parse().ok(),
        None => Some(u128::from_be_bytes(
            Md5::digest(partition_key.as_bytes()).into(),
        )),
    }
}

/// The open shards of a stream and their hash key ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardMap {
    /// (first hash key, last hash key, shard id), by first hash key.
    ranges: Vec<(u128, u128, String)>,
}

impl ShardMap {
    /// The map of these open shards: (shard id, first hash key, last hash key).
    pub fn new(shards: impl IntoIterator<Item = (String, u128, u128)>) -> Self {
        let mut ranges: Vec<(u128, u128, String)> = shards
            .into_iter()
            .map(|(id, first, last)| (first, last, id))
            .collect();
        ranges.sort();
        Self { ranges }
    }

    /// The shard a record goes to.
    pub fn shard_of(&self, partition_key: &str, explicit_hash_key: Option<&str>) -> Option<&str> {
        let hash = hash_key(partition_key, explicit_hash_key)?;
        let at = self.ranges.partition_point(|(first, _, _)| *first <= hash);
        let (first, last, id) = self.ranges.get(at.checked_sub(1)?)?;
        (*first <= hash && hash <= *last).then_some(id.as_str())
    }

    /// Whether `shard` is one of the map's.
    pub fn contains(&self, shard: &str) -> bool {
        self.ranges.iter().any(|(_, _, id)| id == shard)
    }

    /// How many shards.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// One shard's budget under additive increase, multiplicative decrease: the share of the
/// cap it may use now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aimd {
    factor: f64,
    /// Seconds since the start of the last change (throttled or increased).
    since_change: Duration,
    /// How long further throttling is taken as the same event: the records of one burst
    /// are throttled together, and halve the budget once.
    cooling: Duration,
}

impl Default for Aimd {
    fn default() -> Self {
        Self {
            factor: 1.0,
            since_change: Duration::ZERO,
            cooling: Duration::ZERO,
        }
    }
}

impl Aimd {
    /// The share of the cap usable now, `FLOOR` to 1.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Kinesis throttled a record of the shard: halve, once per second at most.
    pub fn throttled(&mut self) {
        if !self.cooling.is_zero() {
            self.since_change = Duration::ZERO;
            return;
        }
        self.factor = (self.factor / 2.0).max(FLOOR);
        self.since_change = Duration::ZERO;
        self.cooling = Duration::from_secs(1);
    }

    /// `elapsed` went by: a tenth of the cap back per whole second without throttling.
    pub fn calm(&mut self, elapsed: Duration) {
        self.cooling = self.cooling.saturating_sub(elapsed);
        self.since_change += elapsed;
        while self.since_change >= Duration::from_secs(1) && self.factor < 1.0 {
            self.factor = (self.factor + INCREASE).min(1.0);
            self.since_change -= Duration::from_secs(1);
        }
        if self.factor >= 1.0 {
            self.since_change = Duration::ZERO;
        }
    }

    /// `cap` scaled by the factor, at least 1.
    pub fn of(&self, cap: u64) -> u64 {
        ((cap as f64 * self.factor) as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_1_to_100_percent_of_the_shard_limit() {
        assert!(LoadShare::new(0).is_err());
        assert!(LoadShare::new(101).unwrap_err().contains("1 to 100"));
        let quarter = LoadShare::new(25).unwrap();
        assert_eq!(quarter.records_per_second(), 250);
        assert_eq!(quarter.bytes_per_second(), 262_144);
        assert_eq!(quarter.duration(500, 0), Duration::from_secs(2));
        assert_eq!(
            quarter.duration(10, 524_288),
            Duration::from_secs(2),
            "bytes"
        );
        assert_eq!(LoadShare::new(1).unwrap().records_per_second(), 10);
    }

    #[test]
    fn records_go_to_the_shard_whose_range_holds_their_hash_key() {
        // Two shards splitting the hash key space in half, as CreateStream makes them.
        let half = u128::MAX / 2;
        let map = ShardMap::new([
            ("shardId-000000000001".to_owned(), half + 1, u128::MAX),
            ("shardId-000000000000".to_owned(), 0, half),
        ]);
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661: the lower half.
        assert_eq!(map.shard_of("a", None), Some("shardId-000000000000"));
        // MD5("b") = 92eb5ffee6ae2fec3ad71c777531578f: the upper half.
        assert_eq!(map.shard_of("b", None), Some("shardId-000000000001"));
        assert_eq!(map.shard_of("b", Some("0")), Some("shardId-000000000000"));
        assert_eq!(map.shard_of("b", Some("not a number")), None);
        let gap = ShardMap::new([("shardId-000000000000".to_owned(), 10, 20)]);
        assert_eq!(gap.shard_of("x", Some("5")), None);
        assert_eq!(gap.shard_of("x", Some("21")), None);
        assert!(gap.contains("shardId-000000000000") && !gap.contains("shardId-1"));
    }

    #[test]
    fn throttling_halves_a_budget_and_calm_seconds_give_back_a_tenth() {
        let mut aimd = Aimd::default();
        assert_eq!(aimd.of(1000), 1000);
        aimd.throttled();
        assert_eq!(aimd.of(1000), 500);
        aimd.throttled();
        assert_eq!(aimd.of(1000), 500, "one burst halves once");
        aimd.calm(Duration::from_secs(1));
        assert_eq!(aimd.of(1000), 600, "a calm second gives a tenth back");
        aimd.throttled();
        assert_eq!(
            aimd.of(1000),
            300,
            "a throttle after the cooling second halves again"
        );
        let mut low = Aimd {
            factor: 0.06,
            ..Aimd::default()
        };
        low.throttled();
        assert_eq!(low.of(1000), 50, "never below the floor");
        let mut aimd = low;
        aimd.calm(Duration::from_millis(900));
        assert_eq!(aimd.of(1000), 50, "less than a second");
        aimd.calm(Duration::from_millis(200));
        assert_eq!(aimd.of(1000), 150);
        aimd.calm(Duration::from_secs(20));
        assert_eq!(aimd.of(1000), 1000, "back to the cap, not above");
    }
}
