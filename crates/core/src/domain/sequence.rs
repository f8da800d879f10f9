//! Kinesis sequence numbers.
//!
//! Sequence numbers are decimal strings of up to 129 digits (API pattern
//! `0|([1-9]\d{0,128})`). AWS issues them as long strings of equal length today, but
//! emulators issue short counters ("9", "10") and nothing in the API promises a fixed
//! length, so comparing them as plain strings would put "10" before "9". [`SequenceNumber`] orders numerically: a shorter number is smaller, numbers of equal
//! length compare digit by digit. Leading zeros are refused, because with them the length
//! rule (and the DynamoDB `size()` condition that mirrors it) would be wrong.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A validated Kinesis sequence number, ordered numerically.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

/// Why a string is not a sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid sequence number {value:?}: {reason}; a Kinesis sequence number is 1 to {max} \
     decimal digits without leading zeros",
    max = SequenceNumber::MAX_DIGITS
)]
pub struct SequenceNumberError {
    /// The rejected input (cut to 140 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl SequenceNumber {
    /// The Kinesis API pattern for sequence numbers is `0|([1-9]\d{0,128})`: at most 129
    /// digits. We accept exactly that, so no sequence number Kinesis can issue is refused.
    pub const MAX_DIGITS: usize = 129;

    /// Parses and validates a sequence number.
    pub fn parse(value: &str) -> Result<Self, SequenceNumberError> {
        let error = |reason| SequenceNumberError {
            value: value.chars().take(140).collect(),
            reason,
        };
        if value.is_empty() {
            return Err(error("it is empty"));
        }
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("it contains a character that is not a digit"));
        }
        if value.len() > Self::MAX_DIGITS {
            return Err(error("it is too long"));
        }
        if value.len() > 1 && value.starts_with('0') {
            return Err(error("it has a leading zero"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The decimal digits, as stored in the archive's `sequenceNumber` attribute.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Number of digits; DynamoDB's `size(sequenceNumber)` sees the same value.
    pub fn digits(&self) -> usize {
        self.0.len()
    }
}

/// How many records of an archive are read ahead and put in numeric sequence order before
/// they are sent (`reinject`) or printed (`query`). A table returns a key's records in the
/// string order of their range key, which is numeric order only while all sequence numbers
/// have one length (as AWS issues them; emulators do not): within this window both put them
/// in numeric order, so a key of at most this many records is in numeric order as a whole,
/// and `query` prints a key's records in the order `reinject` sends them.
pub const REORDER_WINDOW: usize = 10_000;

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.as_bytes().cmp(other.0.as_bytes()))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for SequenceNumber {
    type Err = SequenceNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SequenceNumber({})", self.0)
    }
}

impl serde::Serialize for SequenceNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SequenceNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use proptest::prelude::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn orders_numerically_not_as_strings() {
        assert!(seq("9") < seq("10"));
        assert!(seq("99") < seq("100"));
        assert!(seq("10") > seq("9"));
        assert_eq!(seq("123"), seq("123"));
        let aws = "49590338271490256608559692538361571095921575989136588898";
        assert!(seq("309") < seq(aws));
    }

    #[test]
    fn rejects_what_kinesis_never_issues() {
        for bad in ["", "12a", "-1", " 1", "1.5", "01", "00"] {
            let err = SequenceNumber::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid sequence number"), "{err}");
        }
        assert!(SequenceNumber::parse("0").is_ok());
        assert!(SequenceNumber::parse(&"9".repeat(SequenceNumber::MAX_DIGITS)).is_ok());
        assert!(SequenceNumber::parse(&"9".repeat(SequenceNumber::MAX_DIGITS + 1)).is_err());
    }

    #[test]
    fn error_names_the_value_and_the_rule() {
        let err = SequenceNumber::parse("12x4").unwrap_err().to_string();
        assert!(err.contains("\"12x4\""), "{err}");
        assert!(err.contains("not a digit"), "{err}");
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            "0",
            "[1-9][0-9]{0,3}",
            "[1-9][0-9]{50,60}",
            "[1-9][0-9]{0,128}",
        ]
    }

    proptest! {
        #[test]
        fn order_matches_big_integer_order(a in number(), b in number()) {
            let big = |s: &str| s.parse::<BigUint>().unwrap();
            prop_assert_eq!(seq(&a).cmp(&seq(&b)), big(&a).cmp(&big(&b)));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = SequenceNumber::parse(&s);
        }
    }
}
