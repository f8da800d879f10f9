//! Whether a row group may hold a row a selection keeps, from its footer statistics alone
//! (pure). Every rule here errs on the side of reading: a row group is skipped only when no
//! row within its bounds could pass [`Selection::matches`] as the decoded rows are checked.

use chrono::DateTime;

use crate::domain::record::format_last_update;
use crate::domain::selection::Selection;

/// What a row group's statistics say: each pair is (min, max), `None` when the footer has no
/// statistics for the column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RowGroupBounds<'a> {
    /// `approximateArrivalTimestamp`, epoch milliseconds.
    pub arrival: Option<(i64, i64)>,
    /// `archivedAt`, epoch milliseconds.
    pub archived: Option<(i64, i64)>,
    /// `partitionKey` (string order; possibly truncated, still bounds).
    pub key: Option<(&'a [u8], &'a [u8])>,
    /// `sequenceNumber` (string order; possibly truncated, still bounds).
    pub sequence: Option<(&'a [u8], &'a [u8])>,
}

/// A row's arrival time as decoded (and as [`Selection::matches`] sees it).
pub(super) fn arrival_seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// Whether the row group described by `bounds` may hold a row `selection` keeps.
/// `sequence_digits`: the file's `kinarch.sequenceDigits` (every sequence number of the
/// file has that many digits); without it, sequence statistics are not used, since string
/// order is numeric order only at equal length.
pub(super) fn may_hold(
    selection: &Selection,
    bounds: &RowGroupBounds<'_>,
    sequence_digits: Option<usize>,
) -> bool {
    arrival_may_match(selection, bounds.arrival)
        && archived_may_match(selection, bounds.archived)
        && key_may_match(selection, bounds.key)
        && sequence_may_match(selection, bounds.sequence, sequence_digits)
}

/// A row is kept when `after <= millis / 1000 < before` (`f64`, as decoded): the decoded
/// time only grows with the millisecond, so the max and min rows decide.
fn arrival_may_match(selection: &Selection, arrival: Option<(i64, i64)>) -> bool {
    let Some((min, max)) = arrival else {
        return true;
    };
    let (after, before) = selection.arrived().epoch_bounds();
    after
        .as_ref()
        .is_none_or(|(_, after)| arrival_seconds(max) >= *after)
        && before
            .as_ref()
            .is_none_or(|(_, before)| arrival_seconds(min) < *before)
}

/// Rows are matched by their `lastUpdate` text (whole seconds, fixed width, so it orders as
/// time does); the min and max rows' texts decide.
fn archived_may_match(selection: &Selection, archived: Option<(i64, i64)>) -> bool {
    let Some((min, max)) = archived else {
        return true;
    };
    let text = |millis: i64| DateTime::from_timestamp_millis(millis).map(format_last_update);
    let (Some(min), Some(max)) = (text(min), text(max)) else {
        return true;
    };
    let (after, before) = selection.archived().last_update_bounds();
    after.is_none_or(|after| max >= after) && before.is_none_or(|before| min < before)
}

/// A key outside [min, max] (byte order, as Parquet orders strings) is not in the row group.
fn key_may_match(selection: &Selection, key: Option<(&[u8], &[u8])>) -> bool {
    match (selection.partition_key(), key) {
        (Some(wanted), Some((min, max))) => {
            let wanted = wanted.as_bytes();
            min <= wanted && wanted <= max
        }
        _ => true,
    }
}

/// With every sequence number of `digits` digits, string order is numeric order among the
/// rows, and a bound of another length is below or above all of them.
fn sequence_may_match(
    selection: &Selection,
    sequence: Option<(&[u8], &[u8])>,
    digits: Option<usize>,
) -> bool {
    let (Some((min, max)), Some(digits)) = (sequence, digits) else {
        return true;
    };
    let range = selection.sequence();
    let from_ok = range.from.as_ref().is_none_or(|from| {
        from.digits() < digits || (from.digits() == digits && max >= from.as_str().as_bytes())
    });
    let to_ok = range.to.as_ref().is_none_or(|to| {
        to.digits() > digits || (to.digits() == digits && min <= to.as_str().as_bytes())
    });
    from_ok && to_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::selection::{SelectionSpec, TimeWindow};
    use crate::domain::sequence::SequenceNumber;
    use crate::domain::timefmt::parse_time;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    fn between(from: Option<&str>, to: Option<&str>) -> Selection {
        Selection::new(SelectionSpec {
            from_sequence: from.map(seq),
            to_sequence: to.map(seq),
            ..SelectionSpec::default()
        })
        .unwrap()
    }

    fn sequences<'a>(min: &'a str, max: &'a str) -> RowGroupBounds<'a> {
        RowGroupBounds {
            sequence: Some((min.as_bytes(), max.as_bytes())),
            ..RowGroupBounds::default()
        }
    }

    #[test]
    fn sequence_statistics_are_used_only_when_every_number_has_one_length() {
        // Rows 1, 10, 2: string min "1", max "2", both one digit, but 10 is there. Without
        // the file's digit count, nothing is skipped.
        let rows = sequences("1", "2");
        assert!(may_hold(&between(Some("3"), None), &rows, None));
        assert!(may_hold(&between(None, Some("0")), &rows, None));
        // Every number of 3 digits: numeric at equal length, and by length otherwise.
        let rows = sequences("100", "250");
        let holds = |from, to| may_hold(&between(from, to), &rows, Some(3));
        assert!(holds(Some("250"), None));
        assert!(!holds(Some("251"), None));
        assert!(!holds(Some("1000"), None), "4 digits: above every row");
        assert!(holds(Some("99"), None), "2 digits: below every row");
        assert!(holds(None, Some("100")));
        assert!(!holds(None, Some("99")), "2 digits: below every row");
        assert!(!holds(None, Some("0")));
        assert!(holds(None, Some("1000")));
        assert!(holds(Some("150"), Some("160")));
        assert!(!holds(Some("251"), Some("9999")));
    }

    #[test]
    fn arrival_statistics_skip_a_window_outside_them() {
        let window = |after: &str, before: &str| {
            Selection::new(SelectionSpec {
                arrived: TimeWindow::new(
                    Some(parse_time(after).unwrap()),
                    Some(parse_time(before).unwrap()),
                ),
                ..SelectionSpec::default()
            })
            .unwrap()
        };
        let rows = RowGroupBounds {
            arrival: Some((1_000_000, 2_000_500)),
            ..RowGroupBounds::default()
        };
        assert!(may_hold(&window("1000", "1000.001"), &rows, None));
        assert!(
            may_hold(&window("2000.5", "3000"), &rows, None),
            "after is inclusive"
        );
        assert!(!may_hold(&window("2000.501", "3000"), &rows, None));
        assert!(
            !may_hold(&window("10", "1000"), &rows, None),
            "before is exclusive"
        );
        assert!(may_hold(&window("10", "1000.001"), &rows, None));
    }

    #[test]
    fn archive_statistics_follow_last_update_seconds() {
        let archived = |after: Option<&str>, before: Option<&str>| {
            Selection::new(SelectionSpec {
                archived: TimeWindow::new(
                    after.map(|t| parse_time(t).unwrap()),
                    before.map(|t| parse_time(t).unwrap()),
                ),
                ..SelectionSpec::default()
            })
            .unwrap()
        };
        // Every row archived at 2026-05-01T10:00:00.700Z: lastUpdate "2026-05-01 10:00:00".
        let at = parse_time("2026-05-01T10:00:00.700Z")
            .unwrap()
            .timestamp_millis();
        let rows = RowGroupBounds {
            archived: Some((at, at)),
            ..RowGroupBounds::default()
        };
        assert!(may_hold(
            &archived(Some("2026-05-01T10:00:00.900Z"), None),
            &rows,
            None
        ));
        assert!(!may_hold(
            &archived(Some("2026-05-01T10:00:01Z"), None),
            &rows,
            None
        ));
        assert!(may_hold(
            &archived(None, Some("2026-05-01T10:00:00.100Z")),
            &rows,
            None
        ));
        assert!(!may_hold(
            &archived(None, Some("2026-05-01T10:00:00Z")),
            &rows,
            None
        ));
    }

    #[test]
    fn a_key_outside_the_key_statistics_is_not_there() {
        let rows = RowGroupBounds {
            key: Some((b"customer-10", b"customer-50")),
            ..RowGroupBounds::default()
        };
        let key = |k: &str| may_hold(&Selection::key(k).unwrap(), &rows, None);
        assert!(key("customer-10") && key("customer-3") && key("customer-50"));
        assert!(!key("customer-0") && !key("customer-6") && !key("order-1"));
        assert!(may_hold(&Selection::all(), &rows, None));
        // No statistics: read.
        assert!(may_hold(
            &Selection::key("x").unwrap(),
            &RowGroupBounds::default(),
            Some(3)
        ));
    }
}
