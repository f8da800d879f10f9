//! The DynamoDB expressions kinarch sends, in one place: key conditions and filters built
//! from a [`Selection`], and the numeric comparison of sequence numbers they rest on.
//!
//! # Sequence numbers compare numerically
//! `sequenceNumber` is a string, and DynamoDB compares strings byte by byte, so `"10" <
//! "9"`. A numeric comparison of digit strings without leading zeros is: the longer number
//! is larger, and numbers of one length compare as strings. DynamoDB's `size()` gives the
//! length, so `x >= n` is `size(x) > len(n) OR (size(x) = len(n) AND x >= n)`
//! ([`sequence_at_least`], [`sequence_at_most`]). Key conditions cannot use `size()`; see
//! [`crate::read`] for how a Query narrows its key condition safely instead.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::item::attr;
use crate::domain::selection::{Selection, TimeWindow};
use crate::domain::sequence::SequenceNumber;

/// An expression with its attribute names and values, as DynamoDB takes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expression {
    /// The expression text.
    pub text: String,
    /// `#name` → attribute name.
    pub names: HashMap<String, String>,
    /// `:value` → value.
    pub values: HashMap<String, AttributeValue>,
}

impl Expression {
    /// Adds one condition, ANDed with those before it.
    fn and(&mut self, condition: &str) {
        if !self.text.is_empty() {
            self.text.push_str(" AND ");
        }
        self.text.push_str(condition);
    }

    fn name(&mut self, placeholder: &str, attribute: &str) {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) {
        self.values.insert(placeholder.to_owned(), value);
    }

    /// `None` when there is no condition at all.
    fn non_empty(self) -> Option<Self> {
        (!self.text.is_empty()).then_some(self)
    }
}

/// `attribute >= value` for digit strings, numerically (see the [module documentation](self)):
/// with the attribute's placeholder `name`, the length's `len` and the value's `value`.
pub fn sequence_at_least(name: &str, len: &str, value: &str) -> String {
    format!("(size({name}) > {len} OR (size({name}) = {len} AND {name} >= {value}))")
}

/// `attribute <= value` for digit strings, numerically.
pub fn sequence_at_most(name: &str, len: &str, value: &str) -> String {
    format!("(size({name}) < {len} OR (size({name}) = {len} AND {name} <= {value}))")
}

/// `attribute < value` for digit strings, numerically (the stored record is older).
pub fn sequence_below(name: &str, len: &str, value: &str) -> String {
    format!("(size({name}) < {len} OR (size({name}) = {len} AND {name} < {value}))")
}

/// LATEST's condition on the PutItem of a key's newest record: there is no item of the key
/// yet, or the stored record is older: a numerically lower sequence number, or, for a user
/// record of a KPL container (`sub_sequence` set), the same container's user record with a
/// lower sub-sequence number, or the plain record of that sequence number (which has none).
pub fn stored_is_older(sequence: &SequenceNumber, sub_sequence: Option<u64>) -> Expression {
    let mut condition = Expression {
        text: format!(
            "attribute_not_exists(#pk) OR {}",
            sequence_below("#seq", ":len", ":seq")
        ),
        ..Expression::default()
    };
    condition
        .names
        .insert("#pk".into(), attr::PARTITION_KEY.into());
    condition
        .names
        .insert("#seq".into(), attr::SEQUENCE_NUMBER.into());
    condition.values.insert(":len".into(), digits(sequence));
    condition.values.insert(
        ":seq".into(),
        AttributeValue::S(sequence.as_str().to_owned()),
    );
    if let Some(sub) = sub_sequence {
        condition
            .text
            .push_str(" OR (#seq = :seq AND (attribute_not_exists(#sub) OR #sub < :sub))");
        condition
            .names
            .insert("#sub".into(), attr::SUB_SEQUENCE_NUMBER.into());
        condition
            .values
            .insert(":sub".into(), AttributeValue::N(sub.to_string()));
    }
    condition
}

/// The number of digits of a sequence number, as the value `size()` is compared with.
pub fn digits(sequence: &SequenceNumber) -> AttributeValue {
    AttributeValue::N(sequence.digits().to_string())
}

/// Whether a filter may name key attributes: a Scan's may; a Query's on the time index may
/// not (its key is the arrival time, and the table's sort key is left to Rust too, clear of
/// DynamoDB's rule on key attributes in a Query filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFilters {
    /// Every bound of the selection.
    Included,
    /// Without the sequence range and the arrival window (the key condition and Rust check
    /// them).
    Excluded,
}

/// The filter expression of `selection`'s bounds (sequence range, archive and arrival
/// windows), so that DynamoDB does not send items that cannot match; `None` without
/// bounds. Rust checks every record again ([`Selection::matches`]).
///
/// `lastUpdate` has whole seconds and its fixed-width text orders like time, so the archive
/// window is compared as text (see [`TimeWindow::last_update_bounds`]); arrival times as
/// the exact decimal of the bound.
pub fn selection_filter(selection: &Selection, keys: KeyFilters) -> Option<Expression> {
    let mut e = Expression::default();
    let keys = keys == KeyFilters::Included;
    let range = selection.sequence();
    if let Some(from) = range.from.as_ref().filter(|_| keys) {
        e.and(&sequence_at_least("#seq", ":seqlen", ":seq"));
        e.name("#seq", attr::SEQUENCE_NUMBER);
        e.value(":seqlen", digits(from));
        e.value(":seq", AttributeValue::S(from.as_str().to_owned()));
    }
    if let Some(to) = range.to.as_ref().filter(|_| keys) {
        e.and(&sequence_at_most("#seq", ":tolen", ":to"));
        e.name("#seq", attr::SEQUENCE_NUMBER);
        e.value(":tolen", digits(to));
        e.value(":to", AttributeValue::S(to.as_str().to_owned()));
    }
    let (archived_after, archived_before) = selection.archived().last_update_bounds();
    if let Some(text) = archived_after {
        e.and("#lu >= :lu");
        e.name("#lu", attr::LAST_UPDATE);
        e.value(":lu", AttributeValue::S(text));
    }
    if let Some(text) = archived_before {
        e.and("#lu < :lub");
        e.name("#lu", attr::LAST_UPDATE);
        e.value(":lub", AttributeValue::S(text));
    }
    let (arrived_after, arrived_before) = selection.arrived().epoch_bounds();
    if let Some((text, _)) = arrived_after.filter(|_| keys) {
        e.and("#aat >= :aat");
        e.name("#aat", attr::APPROXIMATE_ARRIVAL_TIMESTAMP);
        e.value(":aat", AttributeValue::N(text));
    }
    if let Some((text, _)) = arrived_before.filter(|_| keys) {
        e.and("#aat < :aatb");
        e.name("#aat", attr::APPROXIMATE_ARRIVAL_TIMESTAMP);
        e.value(":aatb", AttributeValue::N(text));
    }
    e.non_empty()
}

/// The key condition of a Query of one partition key, narrowed to a string range of the
/// sort key when `between` is given (see [`crate::read`] for when that is safe).
pub fn key_condition(partition_key: &str, between: Option<(String, String)>) -> Expression {
    let mut e = Expression::default();
    e.and("#pk = :pk");
    e.name("#pk", attr::PARTITION_KEY);
    e.value(":pk", AttributeValue::S(partition_key.to_owned()));
    if let Some((low, high)) = between {
        e.and("#seq BETWEEN :low AND :high");
        e.name("#seq", attr::SEQUENCE_NUMBER);
        e.value(":low", AttributeValue::S(low));
        e.value(":high", AttributeValue::S(high));
    }
    e
}

/// The key condition of a Query of one shard on the time index, the arrival window as its
/// range. Its upper bound is exclusive, which a key condition cannot say with `BETWEEN`:
/// the bound itself comes back too, and Rust drops it.
pub fn arrival_key_condition(shard: &str, window: &TimeWindow) -> Expression {
    let mut e = Expression::default();
    e.and("#sid = :sid");
    e.name("#sid", attr::SHARD_ID);
    e.value(":sid", AttributeValue::S(shard.to_owned()));
    let (after, before) = window.epoch_bounds();
    if after.is_some() || before.is_some() {
        e.name("#aat", attr::APPROXIMATE_ARRIVAL_TIMESTAMP);
    }
    match (after, before) {
        (Some((after, _)), Some((before, _))) => {
            e.and("#aat BETWEEN :after AND :before");
            e.value(":after", AttributeValue::N(after));
            e.value(":before", AttributeValue::N(before));
        }
        (Some((after, _)), None) => {
            e.and("#aat >= :after");
            e.value(":after", AttributeValue::N(after));
        }
        (None, Some((before, _))) => {
            e.and("#aat < :before");
            e.value(":before", AttributeValue::N(before));
        }
        (None, None) => {}
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::selection::SelectionSpec;
    use crate::domain::timefmt::parse_time;
    use chrono::{TimeZone, Utc};

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    fn selection(spec: SelectionSpec) -> Selection {
        Selection::new(spec).unwrap()
    }

    #[test]
    fn a_time_index_query_filters_no_key_attribute() {
        let filter = selection(SelectionSpec {
            from_sequence: Some(seq("5")),
            arrived: TimeWindow::new(Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()), None),
            archived: TimeWindow::new(Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()), None),
            ..SelectionSpec::default()
        });
        let e = selection_filter(&filter, KeyFilters::Excluded).unwrap();
        assert_eq!(e.text, "#lu >= :lu");
        assert_eq!(e.names.len(), 1);
        let full = selection_filter(&filter, KeyFilters::Included).unwrap();
        assert!(
            full.text.contains("#seq") && full.text.contains("#aat"),
            "{}",
            full.text
        );
        // Only key conditions: no filter expression at all.
        let window = selection(SelectionSpec {
            arrived: TimeWindow::new(None, Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap())),
            ..SelectionSpec::default()
        });
        assert_eq!(selection_filter(&window, KeyFilters::Excluded), None);
    }

    #[test]
    fn scan_filter_expression_is_numeric_and_anded() {
        assert_eq!(
            selection_filter(&Selection::all(), KeyFilters::Included),
            None
        );
        let filter = selection(SelectionSpec {
            from_sequence: Some(seq("123")),
            archived: TimeWindow::new(Some(parse_time("2024-05-01T12:00:00.700Z").unwrap()), None),
            arrived: TimeWindow::new(Some(parse_time("1714564800.25").unwrap()), None),
            ..SelectionSpec::default()
        });
        let e = selection_filter(&filter, KeyFilters::Included).unwrap();
        assert_eq!(
            e.text,
            "(size(#seq) > :seqlen OR (size(#seq) = :seqlen AND #seq >= :seq)) AND #lu >= :lu AND #aat >= :aat"
        );
        assert_eq!(e.values[":seqlen"], AttributeValue::N("3".into()));
        assert_eq!(e.values[":seq"], AttributeValue::S("123".into()));
        assert_eq!(
            e.values[":lu"],
            AttributeValue::S("2024-05-01 12:00:00".into())
        );
        assert_eq!(e.values[":aat"], AttributeValue::N("1714564800.25".into()));
        assert_eq!(e.names["#aat"], "approximateArrivalTimestamp");
        let upto = selection(SelectionSpec {
            from_sequence: Some(seq("9")),
            to_sequence: Some(seq("10")),
            ..SelectionSpec::default()
        });
        assert_eq!(
            selection_filter(&upto, KeyFilters::Included).unwrap().text,
            "(size(#seq) > :seqlen OR (size(#seq) = :seqlen AND #seq >= :seq)) AND \
             (size(#seq) < :tolen OR (size(#seq) = :tolen AND #seq <= :to))"
        );
    }

    #[test]
    fn windows_are_after_inclusive_and_before_exclusive() {
        let filter = selection(SelectionSpec {
            arrived: TimeWindow::new(
                Some(parse_time("1714564800").unwrap()),
                Some(parse_time("1714564810.5").unwrap()),
            ),
            archived: TimeWindow::new(None, Some(parse_time("2024-05-01T12:00:00.250Z").unwrap())),
            ..SelectionSpec::default()
        });
        let e = selection_filter(&filter, KeyFilters::Included).unwrap();
        assert_eq!(e.text, "#lu < :lub AND #aat >= :aat AND #aat < :aatb");
        assert_eq!(
            e.values[":lub"],
            AttributeValue::S("2024-05-01 12:00:01".into())
        );
        assert_eq!(e.values[":aatb"], AttributeValue::N("1714564810.5".into()));
    }

    #[test]
    fn key_conditions() {
        let plain = key_condition("k", None);
        assert_eq!(plain.text, "#pk = :pk");
        let narrowed = key_condition("k", Some(("10".into(), "99:".into())));
        assert_eq!(narrowed.text, "#pk = :pk AND #seq BETWEEN :low AND :high");
        assert_eq!(narrowed.values[":high"], AttributeValue::S("99:".into()));
        let window = TimeWindow::new(
            Some(parse_time("1714564800").unwrap()),
            Some(parse_time("1714564810.5").unwrap()),
        );
        let index = arrival_key_condition("shardId-000000000000", &window);
        assert_eq!(
            index.text,
            "#sid = :sid AND #aat BETWEEN :after AND :before"
        );
        assert_eq!(
            index.values[":before"],
            AttributeValue::N("1714564810.5".into())
        );
        let open = arrival_key_condition("s", &TimeWindow::default());
        assert_eq!((open.text.as_str(), open.names.len()), ("#sid = :sid", 1));
    }

    #[test]
    fn numeric_comparisons_of_digit_strings() {
        assert_eq!(
            sequence_below("sequenceNumber", ":len", ":seq"),
            "(size(sequenceNumber) < :len OR (size(sequenceNumber) = :len AND sequenceNumber < :seq))"
        );
    }

    #[test]
    fn latest_writes_only_over_an_older_record() {
        let seq = SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898")
            .unwrap();
        let plain = stored_is_older(&seq, None);
        assert_eq!(
            plain.text,
            "attribute_not_exists(#pk) OR (size(#seq) < :len OR (size(#seq) = :len AND #seq < :seq))"
        );
        assert_eq!(plain.values[":len"], AttributeValue::N("56".into()));
        assert_eq!(plain.names.len(), 2);
        let user = stored_is_older(&seq, Some(3));
        assert!(
            user.text
                .ends_with(" OR (#seq = :seq AND (attribute_not_exists(#sub) OR #sub < :sub))"),
            "{}",
            user.text
        );
        assert_eq!(user.values[":sub"], AttributeValue::N("3".into()));
        assert_eq!(user.names["#sub"], "subSequenceNumber");
    }
}
