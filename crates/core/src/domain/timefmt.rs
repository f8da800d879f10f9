//! Points in time typed by people.
//!
//! Every option that takes a TIME (`--arrived-after`, `--archived-before`, `archive
//! --start-at`, ...) accepts the same forms, because people copy a time from wherever they
//! saw it: a record's `lastUpdate` (a UTC date-time without a zone), its
//! `approximateArrivalTimestamp` (epoch seconds), a log line (RFC 3339, epoch milliseconds),
//! or they think in "the last two hours":
//!
//! | form | example | read as |
//! |---|---|---|
//! | RFC 3339, any offset, optional fraction | `2026-05-01T10:00:00Z`, `2026-05-01T12:00:00+02:00` | that instant |
//! | a date | `2026-05-01` | UTC midnight |
//! | the archive's `lastUpdate` | `2026-05-01 10:00:00` | UTC (the archive writes UTC) |
//! | epoch seconds, optional fraction (≤ 9 digits) | `1777629600`, `1777629600.25` | exactly, no floating point |
//! | epoch milliseconds: 13 digits | `1777629600250` | milliseconds (a 13-digit count of seconds would be after the year 33,000) |
//! | `now` | `now` | the current time |
//! | a duration before now | `90s`, `15m`, `2h`, `7d`, `1h30m` | that long ago |
//!
//! A date-time with `T` but no zone (`2026-05-01T10:00:00`) is refused: it would mean local
//! time to some people and UTC to others, and guessing could select the wrong records.
//! Anything else is refused with the list of accepted forms.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// The accepted forms, for error messages.
const FORMS: &str = "Use RFC 3339 (2026-05-01T10:00:00Z, 2026-05-01T12:00:00+02:00), a date \
     (2026-05-01, UTC), the archive's lastUpdate form (2026-05-01 10:00:00, UTC), epoch seconds \
     (1777629600 or 1777629600.25) or milliseconds (1777629600250), now, or a duration ago \
     (90s, 15m, 2h, 7d)";

/// A time in none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {value:?}: {reason}. {FORMS}")]
pub struct TimeError {
    /// The rejected input (cut to 100 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a time in any of the forms in the [module documentation](self), relative to the
/// current time for `now` and durations.
///
/// ```
/// use kinarch_core::domain::timefmt::parse_time;
///
/// let a = parse_time("2024-05-01T12:00:00Z").unwrap();
/// assert_eq!(parse_time("1714564800").unwrap(), a);
/// assert_eq!(parse_time("1714564800000").unwrap(), a);
/// assert_eq!(parse_time("2024-05-01 12:00:00").unwrap(), a);
/// assert!(parse_time("2024-05-01T12:00:00").is_err()); // no zone
/// assert!(parse_time("yesterday").is_err());
/// ```
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, TimeError> {
    parse_time_at(text, Utc::now())
}

/// [`parse_time`] with the current time given, so that relative forms are testable and one
/// command reads all its times against the same `now`.
pub fn parse_time_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    let trimmed = text.trim();
    let error = |reason: &str| TimeError {
        value: text.chars().take(100).collect(),
        reason: reason.to_owned(),
    };
    if trimmed.is_empty() {
        return Err(error("it is empty"));
    }
    if trimmed.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_epoch(trimmed).map_err(error);
    }
    if let Some(ago) = parse_duration(trimmed) {
        let ago = ago.map_err(error)?;
        return now
            .checked_sub_signed(ago)
            .ok_or_else(|| error("that is too long ago"));
    }
    if let Ok(date) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    if let Ok(time) =
        NaiveDateTime::parse_from_str(trimmed, crate::domain::record::LAST_UPDATE_FORMAT)
    {
        return Ok(time.and_utc());
    }
    DateTime::parse_from_rfc3339(trimmed)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| error(&why_not(trimmed, &e.to_string())))
}

/// Why `text` is not a time, in terms of the form it was most likely meant in (chrono's own
/// message, "premature end of input", names no form).
fn why_not(text: &str, parser_said: &str) -> String {
    // The shape of a text: each digit as 9, so "2026-13-01" is "9999-99-99".
    let shape: String = text
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    if let Some(unsigned) = text.strip_prefix('-') {
        return match parse_duration(unsigned) {
            Some(Ok(_)) => format!(
                "a duration is how long ago, without a sign: {unsigned} means {unsigned} ago"
            ),
            _ => "negative epoch seconds are not accepted".to_owned(),
        };
    }
    if NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
        return "it has no time zone; add Z for UTC or an offset like +02:00".to_owned();
    }
    if shape == "9999-99-99" {
        return "it is not a date of the calendar: a date is YYYY-MM-DD with a month 01 to 12 \
                and a day of that month"
            .to_owned();
    }
    if shape.starts_with("9999-99-99") && (shape.len() >= 19) {
        return "it is not a valid date-time: YYYY-MM-DDTHH:MM:SSZ (RFC 3339) or the archive's \
                YYYY-MM-DD HH:MM:SS, with a real date and a time of day (hours 00 to 23)"
            .to_owned();
    }
    format!("not in an accepted form ({parser_said})")
}

/// Whether `text` is a time relative to now (`now`, or a duration ago such as `30m`): it
/// names another instant on every run.
pub fn is_relative(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.eq_ignore_ascii_case("now") || matches!(parse_duration(trimmed), Some(Ok(_)))
}

/// `Some` when `text` looks like a duration (digits followed by a unit, repeated), with the
/// duration or why it is not one.
fn parse_duration(text: &str) -> Option<Result<chrono::TimeDelta, &'static str>> {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return None;
    };
    if !first.is_ascii_digit() || !last.is_ascii_alphabetic() {
        return None;
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_digit() || b"smhdSMHD".contains(b))
    {
        return None;
    }
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    for &b in bytes {
        if b.is_ascii_digit() {
            let n = number.unwrap_or(0);
            number = Some(
                match n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(i64::from(b - b'0')))
                {
                    Some(n) => n,
                    None => return Some(Err("the duration is too long")),
                },
            );
            continue;
        }
        let Some(n) = number.take() else {
            return Some(Err("a duration is digits followed by s, m, h or d (1h30m)"));
        };
        let unit = match b.to_ascii_lowercase() {
            b's' => 1,
            b'm' => 60,
            b'h' => 3_600,
            _ => 86_400,
        };
        total = match n.checked_mul(unit).and_then(|s| total.checked_add(s)) {
            Some(total) => total,
            None => return Some(Err("the duration is too long")),
        };
    }
    Some(chrono::TimeDelta::try_seconds(total).ok_or("the duration is too long"))
}

/// Epoch seconds, or milliseconds when the whole part has 13 digits.
fn parse_epoch(text: &str) -> Result<DateTime<Utc>, &'static str> {
    let whole = text.split_once('.').map_or(text, |(whole, _)| whole);
    if whole.len() == 13 {
        let time = parse_epoch_seconds(&format!(
            "{}.{}",
            &whole[..10],
            &text[10..].replace('.', "")
        ))?;
        return Ok(time);
    }
    parse_epoch_seconds(text)
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

    #[test]
    fn a_refused_time_names_the_form_it_was_meant_in() {
        let now = Utc::now();
        let reason = |text: &str| parse_time_at(text, now).unwrap_err().reason;
        assert!(reason("2026-13-01").contains("YYYY-MM-DD with a month 01 to 12"));
        assert!(reason("2026-02-30").contains("YYYY-MM-DD"));
        assert!(reason("2026-05-01T25:00:00Z").contains("hours 00 to 23"));
        assert!(reason("2026-05-01 10:61:00").contains("not a valid date-time"));
        assert_eq!(
            reason("-5m"),
            "a duration is how long ago, without a sign: 5m means 5m ago"
        );
        assert!(reason("-1714564800").contains("negative epoch seconds"));
        assert!(!reason("2026-13-01").contains("premature"));
        // A lone sign (found by the never_panics property).
        assert!(reason("-").contains("negative epoch seconds"));
    }
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
            "2024-05-01 12:00",
            "2024-05-01T12:00:00",
            "5x",
            "h",
            "1h30",
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
        let err = parse_time("2024-05-01T12:00:00").unwrap_err().to_string();
        assert!(
            err.contains("no time zone") && err.contains("add Z"),
            "{err}"
        );
        let err = parse_time("99999999999999999999d").unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn dates_last_update_and_milliseconds_are_utc_instants() {
        let t = parse_time("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(parse_time("2024-05-01 12:00:00").unwrap(), t);
        assert_eq!(
            parse_time("2024-05-01").unwrap(),
            parse_time("2024-05-01T00:00:00Z").unwrap()
        );
        assert_eq!(parse_time("1714564800000").unwrap(), t);
        let ms = parse_time("1714564800250").unwrap();
        assert_eq!(ms.timestamp(), 1714564800);
        assert_eq!(ms.timestamp_subsec_millis(), 250);
        let sub = parse_time("1714564800250.5").unwrap();
        assert_eq!(sub.timestamp_subsec_micros(), 250_500);
        // 10 and 12 digits stay seconds.
        assert_eq!(
            parse_time("171456480000").unwrap().timestamp(),
            171456480000
        );
    }

    #[test]
    fn now_and_durations_count_back_from_the_given_now() {
        let now = parse_time("2026-05-01T10:00:00Z").unwrap();
        let at = |text: &str| parse_time_at(text, now).unwrap();
        assert_eq!(at("now"), now);
        assert_eq!(at(" NOW "), now);
        assert_eq!(at("90s"), parse_time("2026-05-01T09:58:30Z").unwrap());
        assert_eq!(at("15m"), parse_time("2026-05-01T09:45:00Z").unwrap());
        assert_eq!(at("2h"), parse_time("2026-05-01T08:00:00Z").unwrap());
        assert_eq!(at("7d"), parse_time("2026-04-24T10:00:00Z").unwrap());
        assert_eq!(at("1h30m"), parse_time("2026-05-01T08:30:00Z").unwrap());
        assert_eq!(at("0s"), now);
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
