//! Points in time typed by people: RFC 3339 or epoch seconds.
//!
//! `kinarch scan --archived-after` and `--arrived-after` take either form, because archive
//! attributes hold both (`lastUpdate` is a UTC date-time, `approximateArrivalTimestamp`
//! epoch seconds) and people copy one or the other from a record. Anything else is refused
//! with an error showing both accepted forms: guessing a format (is `03/04` March or
//! April?) could silently select the wrong records.

use chrono::{DateTime, TimeZone, Utc};

/// A time that is neither RFC 3339 nor epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time {value:?}: {reason}. Use RFC 3339 (2024-05-01T12:00:00Z, \
     2024-05-01T14:00:00+02:00) or epoch seconds (1714564800 or 1714564800.25)"
)]
pub struct TimeError {
    /// The rejected input (cut to 100 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses an RFC 3339 date-time (`2024-05-01T12:00:00Z`, any offset, optional fraction) or
/// epoch seconds (`1714564800`, `1714564800.250`; up to 9 fraction digits, read exactly:
/// no binary floating point is involved).
///
/// ```
/// use kinarch_core::domain::timefmt::parse_time;
///
/// let a = parse_time("2024-05-01T12:00:00Z").unwrap();
/// let b = parse_time("1714564800").unwrap();
/// assert_eq!(a, b);
/// assert!(parse_time("yesterday").is_err());
/// ```
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, TimeError> {
    let trimmed = text.trim();
    let error = |reason: &str| TimeError {
        value: text.chars().take(100).collect(),
        reason: reason.to_owned(),
    };
    if trimmed.is_empty() {
        return Err(error("it is empty"));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_epoch_seconds(trimmed).map_err(error);
    }
    DateTime::parse_from_rfc3339(trimmed)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            let reason = if trimmed.starts_with('-') {
                "negative epoch seconds are not accepted".to_owned()
            } else {
                format!("not an RFC 3339 date-time ({e}) nor epoch seconds")
            };
            error(&reason)
        })
}

fn parse_epoch_seconds(text: &str) -> Result<DateTime<Utc>, &'static str> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() || fraction.contains('.') || (text.contains('.') && fraction.is_empty()) {
        return Err("epoch seconds must be digits with an optional fraction, like 1714564800.25");
    }
    if fraction.len() > 9 {
        return Err("epoch seconds take at most 9 fraction digits (nanoseconds)");
    }
    let seconds: i64 = whole
        .parse()
        .map_err(|_| "epoch seconds are out of range")?;
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}")
            .parse()
            .map_err(|_| "epoch seconds must be digits with an optional fraction")?
    };
    Utc.timestamp_opt(seconds, nanos)
        .single()
        .ok_or("epoch seconds are out of range")
}

/// Formats a time as epoch seconds, fraction kept to the nanosecond and trailing zeros
/// dropped: the exact decimal, for DynamoDB number comparisons.
pub fn epoch_seconds_text(time: DateTime<Utc>) -> String {
    let seconds = time.timestamp();
    let nanos = time.timestamp_subsec_nanos();
    if nanos == 0 {
        return seconds.to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{seconds}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        let t = parse_time("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(t.timestamp(), 1714564800);
        assert_eq!(parse_time("2024-05-01T14:00:00+02:00").unwrap(), t);
        let f = parse_time("2024-05-01T12:00:00.250Z").unwrap();
        assert_eq!(f.timestamp_subsec_millis(), 250);
        assert_eq!(parse_time(" 2024-05-01T12:00:00z ").unwrap(), t);
    }

    #[test]
    fn epoch_seconds_whole_and_fraction_read_exactly() {
        assert_eq!(parse_time("1714564800").unwrap().timestamp(), 1714564800);
        let t = parse_time("1545084650.987").unwrap();
        assert_eq!(t.timestamp(), 1545084650);
        assert_eq!(t.timestamp_subsec_nanos(), 987_000_000);
        let n = parse_time("1.000000001").unwrap();
        assert_eq!(n.timestamp_subsec_nanos(), 1);
        assert_eq!(parse_time("0").unwrap().timestamp(), 0);
    }

    #[test]
    fn anything_else_is_refused_with_both_forms_shown() {
        for bad in [
            "",
            "   ",
            "yesterday",
            "2024-05-01",
            "2024-05-01 12:00",
            "12:00:00",
            "1714564800.",
            ".5",
            "1.2.3",
            "1.0000000001",
            "-5",
            "1e9",
            "99999999999999999999",
            "2024-13-01T00:00:00Z",
        ] {
            let err = parse_time(bad).unwrap_err().to_string();
            assert!(
                err.contains("RFC 3339") && err.contains("epoch seconds"),
                "{bad:?}: {err}"
            );
        }
        let err = parse_time("-5").unwrap_err().to_string();
        assert!(err.contains("negative"), "{err}");
    }

    #[test]
    fn epoch_text_is_exact_and_minimal() {
        assert_eq!(
            epoch_seconds_text(parse_time("1714564800").unwrap()),
            "1714564800"
        );
        assert_eq!(
            epoch_seconds_text(parse_time("1545084650.987").unwrap()),
            "1545084650.987"
        );
        assert_eq!(
            epoch_seconds_text(parse_time("2024-05-01T12:00:00.000001Z").unwrap()),
            "1714564800.000001"
        );
    }

    proptest! {
        #[test]
        fn epoch_text_round_trips(seconds in 0i64..8_000_000_000, nanos in 0u32..1_000_000_000) {
            let t = Utc.timestamp_opt(seconds, nanos).unwrap();
            prop_assert_eq!(parse_time(&epoch_seconds_text(t)).unwrap(), t);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_time(&s);
        }
    }
}
