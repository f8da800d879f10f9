//! Pacing a replay: at the original pace (the gaps between records' arrival times, divided
//! by a speed-up), and how long a replay will take.
//!
//! Why arrival times and not archive times: `approximateArrivalTimestamp` is when Kinesis
//! accepted the record, the pace the producers had; `lastUpdate` is when the archiver got to
//! it, which bunches records into Lambda batches. Records are paced across all shards by
//! one clock, merged by arrival time, as they arrived at the stream.
//!
//! A record that arrived before the first one paced (records of one shard read after those
//! of another) is due at once, never in the past's past: the replay never waits for a gap it
//! cannot reproduce, and it never reorders.

use std::time::Duration;

/// The most a replay can be sped up: beyond it the gaps are below a microsecond and the
/// replay is as fast as `--rate` allows anyway.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// A speed that is not a positive number up to [`MAX_SPEED`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "invalid speed {0}: give a number above 0 and at most 1,000,000 (10 for ten times faster, 0.5 for half as fast)"
)]
pub struct SpeedError(pub String);

/// The original pace of a replay, sped up `speed` times.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginalPace {
    speed: f64,
    /// The arrival time (epoch seconds) that is due at the replay's start.
    origin: Option<f64>,
}

impl OriginalPace {
    /// The pace of the original gaps divided by `speed`.
    pub fn new(speed: f64) -> Result<Self, SpeedError> {
        if !(speed.is_finite() && speed > 0.0 && speed <= MAX_SPEED) {
            return Err(SpeedError(speed.to_string()));
        }
        Ok(Self {
            speed,
            origin: None,
        })
    }

    /// Parses a `--speed` value.
    pub fn parse_speed(text: &str) -> Result<f64, SpeedError> {
        let speed: f64 = text
            .trim()
            .parse()
            .map_err(|_| SpeedError(format!("{text:?}")))?;
        Self::new(speed).map(|pace| pace.speed)
    }

    /// How long after the replay's start a record that arrived at `arrival` (epoch
    /// seconds) is due. The first record asked about sets the origin.
    pub fn due(&mut self, arrival: f64) -> Duration {
        let origin = *self.origin.get_or_insert(arrival);
        let gap = (arrival - origin) / self.speed;
        if gap.is_finite() && gap > 0.0 {
            Duration::from_secs_f64(gap)
        } else {
            Duration::ZERO
        }
    }
}

/// How long a replay of `records` records that arrived from `first` to `last` (epoch
/// seconds) takes: the paced span (when paced) or the rate's floor, whichever is longer.
/// Calls and network time are not counted: an estimate of what pacing and `--rate` impose.
pub fn replay_duration(
    records: u64,
    first_and_last: Option<(f64, f64)>,
    speed: Option<f64>,
    rate_per_second: Option<u32>,
) -> Duration {
    let paced = match (speed, first_and_last) {
        (Some(speed), Some((first, last))) if last > first => {
            Duration::from_secs_f64((last - first) / speed)
        }
        _ => Duration::ZERO,
    };
    let rated = match rate_per_second {
        // The first second's records go at once; the rest wait for their window.
        Some(rate) if rate > 0 && records > 0 => {
            Duration::from_secs((records - 1) / u64::from(rate))
        }
        _ => Duration::ZERO,
    };
    paced.max(rated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_the_arrival_gaps_divided_by_the_speed() {
        let mut pace = OriginalPace::new(20.0).unwrap();
        assert_eq!(pace.due(1000.0), Duration::ZERO);
        assert_eq!(pace.due(1002.0), Duration::from_millis(100));
        assert_eq!(pace.due(1010.0), Duration::from_millis(500));
        let mut same = OriginalPace::new(1.0).unwrap();
        same.due(5.0);
        assert_eq!(same.due(6.5), Duration::from_millis(1500));
    }

    #[test]
    fn a_record_before_the_origin_is_due_at_once() {
        let mut pace = OriginalPace::new(1.0).unwrap();
        pace.due(100.0);
        assert_eq!(pace.due(99.0), Duration::ZERO);
        assert_eq!(pace.due(f64::NAN), Duration::ZERO);
    }

    #[test]
    fn speeds_must_be_positive_and_bounded() {
        for bad in ["0", "-1", "nan", "inf", "1e7", "fast", ""] {
            let err = OriginalPace::parse_speed(bad).unwrap_err().to_string();
            assert!(err.contains("above 0"), "{bad}: {err}");
        }
        assert_eq!(OriginalPace::parse_speed("0.5").unwrap(), 0.5);
        assert_eq!(OriginalPace::parse_speed(" 10 ").unwrap(), 10.0);
    }

    #[test]
    fn duration_is_the_longer_of_pace_and_rate() {
        let span = Some((0.0, 100.0));
        assert_eq!(
            replay_duration(10, span, Some(10.0), None),
            Duration::from_secs(10)
        );
        assert_eq!(
            replay_duration(1001, span, Some(10.0), Some(10)),
            Duration::from_secs(100)
        );
        assert_eq!(replay_duration(0, None, None, Some(5)), Duration::ZERO);
        assert_eq!(replay_duration(1, span, None, None), Duration::ZERO);
    }
}
