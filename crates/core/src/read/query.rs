//! The records of one partition key: GetItem or Query, planned from the selection's
//! sequence range so that the key condition never misses a record (see the
//! [module documentation](super) on numeric order).

use async_stream::stream;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{Stream, StreamExt};

use super::pages::{REORDER_BYTES, cap, convert, in_sequence_order, page_limit, resolve};
use super::{ArchiveReader, PAGE_RETRY_BUDGET, ReadOptions};
use crate::aws::expression::key_condition;
use crate::aws::item::{Item, attr};
use crate::aws::send_with_retries;
use crate::domain::config::ArchiveMode;
use crate::domain::record::ArchiveRecord;
use crate::domain::selection::{Selection, SequenceRange};
use crate::domain::sequence::{REORDER_WINDOW, SequenceNumber};
use crate::error::Error;

impl ArchiveReader {
    /// The records of `selection`'s partition key, in numeric sequence order within
    /// [`REORDER_WINDOW`] (as a replay sends them):
    /// - `from == to`: that one record (GetItem);
    /// - one bound: an open range; both: a closed range; none: every record of the key;
    /// - LATEST tables hold one record per key: it is returned only if it is selected.
    pub(super) fn query(
        &self,
        partition_key: String,
        selection: Selection,
        options: ReadOptions,
    ) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
        let archive = self.clone();
        let limit = selection.limit();
        let inner = stream! {
            let keep = |r: &ArchiveRecord| selection.matches(r);
            if let Err(err) = archive.check_table().await {
                yield Err(err);
                return;
            }
            // What to query after the plan's first step, if anything: the key condition's
            // string range and the page size.
            let query = match plan_query(archive.config.mode, selection.sequence()) {
                QueryRead::Get { sequence } => {
                    match archive.get(&partition_key, sequence.as_ref()).await {
                        Ok(Some(item)) => {
                            if let Some(result) = convert(&item, keep) {
                                yield result;
                            }
                            None
                        }
                        // No plain record under that sequence number: the user records of a
                        // KPL container with it, if any (range keys `<sequence>.<sub-sequence>`,
                        // see crate::domain::kpl).
                        Ok(None) => sequence
                            .filter(|_| archive.config.mode == ArchiveMode::All)
                            .map(|s| (Some(container_range(&s, &s)), page_limit(options.page_size, false, limit))),
                        Err(err) => {
                            yield Err(err);
                            None
                        }
                    }
                }
                QueryRead::Query { between, exact } => Some((
                    between.map(|(low, high)| container_range(&low, &high)),
                    page_limit(options.page_size, exact, limit),
                )),
            };
            if let Some((between, page)) = query {
                let mut pages = std::pin::pin!(archive.query_pages(partition_key.clone(), between, page));
                while let Some(page) = pages.next().await {
                    match page {
                        Ok(items) => {
                            for item in &items {
                                if let Some(result) = convert(item, keep) {
                                    yield result;
                                }
                            }
                        }
                        Err(err) => yield Err(err),
                    }
                }
            }
        };
        // The first `limit` records the table returns (as a replay of the same selection
        // reads them), put in numeric order as the replay sends them, then their payloads.
        resolve(
            self.objects.clone(),
            in_sequence_order(cap(inner, limit), REORDER_WINDOW, REORDER_BYTES),
        )
    }

    /// GetItem by partition key, plus the sequence number on ALL tables.
    async fn get(
        &self,
        partition_key: &str,
        sequence: Option<&SequenceNumber>,
    ) -> Result<Option<Item>, Error> {
        let mut call = self
            .dynamodb
            .get_item()
            .table_name(self.config.table.as_str())
            .key(
                attr::PARTITION_KEY,
                AttributeValue::S(partition_key.to_owned()),
            );
        if let Some(sequence) = sequence {
            call = call.key(
                attr::SEQUENCE_NUMBER,
                AttributeValue::S(sequence.as_str().to_owned()),
            );
        }
        let output = send_with_retries(
            PAGE_RETRY_BUDGET,
            || call.clone().send(),
            |e| self.read_error("DynamoDB.GetItem", e),
        )
        .await?;
        self.counters.count(u64::from(output.item.is_some()));
        Ok(output.item)
    }

    /// Query pages of one partition key, optionally narrowed to a string range.
    fn query_pages(
        &self,
        partition_key: String,
        between: Option<(String, String)>,
        page: Option<i32>,
    ) -> impl Stream<Item = Result<Vec<Item>, Error>> + Send + 'static {
        let condition = key_condition(&partition_key, between);
        let call = self
            .dynamodb
            .query()
            .table_name(self.config.table.as_str())
            .key_condition_expression(condition.text)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values))
            .set_limit(page);
        self.clone().query_call_pages(call)
    }

    /// Every page of a Query (of the table or of the time index).
    pub(super) fn query_call_pages(
        self,
        call: QueryFluentBuilder,
    ) -> impl Stream<Item = Result<Vec<Item>, Error>> + Send + 'static {
        let archive = self.clone();
        self.paginate(move |start| {
            let request = call.clone().set_exclusive_start_key(start);
            let archive = archive.clone();
            async move {
                let output = send_with_retries(
                    PAGE_RETRY_BUDGET,
                    || request.clone().send(),
                    |e| archive.read_error("DynamoDB.Query", e),
                )
                .await?;
                Ok((
                    output.items.unwrap_or_default(),
                    output.scanned_count,
                    output.last_evaluated_key,
                ))
            }
        })
    }
}

/// The string range of range keys holding the records of container sequence numbers
/// `low..=high` (same digit count): `low` itself up to `high` followed by `:`, which sorts
/// after `.` and every digit, so the user records of a KPL container with sequence number
/// `high` (`<high>.<sub-sequence>`, see [`crate::domain::kpl`]) are inside. The superset
/// (longer numbers starting with `high`) is dropped by the numeric check in Rust.
fn container_range(low: &SequenceNumber, high: &SequenceNumber) -> (String, String) {
    (low.as_str().to_owned(), format!("{}:", high.as_str()))
}

/// How a query is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum QueryRead {
    /// GetItem: ALL tables with `from == to` (key partition key + sequence number), and
    /// every LATEST query (key partition key: the one record, checked against the range).
    Get { sequence: Option<SequenceNumber> },
    /// Query the partition key. `between`: a key-condition narrowing proven safe (both
    /// bounds have the same number of digits). `exact`: every item returned is a match
    /// (no bound at all), so DynamoDB's `Limit` can be the number of records still wanted.
    Query {
        between: Option<(SequenceNumber, SequenceNumber)>,
        exact: bool,
    },
}

fn plan_query(mode: ArchiveMode, range: &SequenceRange) -> QueryRead {
    match mode {
        // NONE has no table: `ArchiveReader::read` never queries one for it.
        ArchiveMode::Latest | ArchiveMode::None => QueryRead::Get { sequence: None },
        ArchiveMode::All => {
            if let Some(single) = range.single() {
                return QueryRead::Get {
                    sequence: Some(single.clone()),
                };
            }
            match (&range.from, &range.to) {
                (None, None) => QueryRead::Query {
                    between: None,
                    exact: true,
                },
                (Some(from), Some(to)) if from.digits() == to.digits() => QueryRead::Query {
                    between: Some((from.clone(), to.clone())),
                    exact: false,
                },
                _ => QueryRead::Query {
                    between: None,
                    exact: false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::tests::{range, seq};

    #[test]
    fn query_plans() {
        use QueryRead::*;
        assert_eq!(
            plan_query(ArchiveMode::All, &range(Some("10"), Some("10"))),
            Get {
                sequence: Some(seq("10"))
            }
        );
        assert_eq!(
            plan_query(ArchiveMode::Latest, &range(Some("10"), Some("10"))),
            Get { sequence: None }
        );
        assert_eq!(
            plan_query(ArchiveMode::Latest, &range(None, None)),
            Get { sequence: None }
        );
        assert_eq!(
            plan_query(ArchiveMode::All, &range(None, None)),
            Query {
                between: None,
                exact: true
            }
        );
        // Same length: BETWEEN is a safe superset.
        assert_eq!(
            plan_query(ArchiveMode::All, &range(Some("10"), Some("99"))),
            Query {
                between: Some((seq("10"), seq("99"))),
                exact: false
            }
        );
        // Different lengths or one bound: only the partition key in the key condition.
        for r in [
            range(Some("9"), Some("100")),
            range(Some("9"), None),
            range(None, Some("100")),
        ] {
            assert_eq!(
                plan_query(ArchiveMode::All, &r),
                Query {
                    between: None,
                    exact: false
                }
            );
        }
    }

    #[test]
    fn the_between_that_plan_query_sends_is_a_superset_of_the_numeric_range() {
        // Exhaustive over small numbers: whenever plan_query narrows the key condition to
        // BETWEEN, every number numerically in [from, to] is inside that BETWEEN as
        // DynamoDB compares strings (byte by byte), so the Rust-side filter sees it.
        // (from == to is a GetItem of that one number.)
        for from in 10u32..99 {
            for to in (from + 1..100).step_by(7) {
                let plan = plan_query(
                    ArchiveMode::All,
                    &range(Some(&from.to_string()), Some(&to.to_string())),
                );
                let QueryRead::Query {
                    between: Some((low, high)),
                    ..
                } = plan
                else {
                    panic!("[{from}, {to}] has bounds of equal length: {plan:?}");
                };
                for x in 0u32..1000 {
                    let xs = x.to_string();
                    let numeric = (from..=to).contains(&x);
                    let in_between = xs.as_bytes() >= low.as_str().as_bytes()
                        && xs.as_bytes() <= high.as_str().as_bytes();
                    assert!(!numeric || in_between, "{x} in [{from}, {to}]");
                }
            }
        }
    }
}
