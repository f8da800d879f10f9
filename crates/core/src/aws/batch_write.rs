//! BatchWriteItem: the one call that writes (the ALL writer's puts) and deletes (`kinarch
//! tier --delete`) items in requests of at most 25, its UnprocessedItems retried as the part
//! left and transient errors whole, through [`retry`].

use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemError, BatchWriteItemOutput};
use aws_sdk_dynamodb::types::WriteRequest;

use crate::aws::aws_error_with;
use crate::aws::error::AwsErrorKind;
use crate::aws::retry::{GaveUp, Retries, RetryPolicy, Verdict, retry};
use crate::domain::names::TableName;
use crate::error::Error;

/// The operation's name in errors and logs.
pub(crate) const BATCH_WRITE_ITEM: &str = "DynamoDB.BatchWriteItem";

/// At most this many writes go in one request (DynamoDB's limit).
pub const MAX_WRITES_PER_REQUEST: usize = 25;

/// Sends `requests` (at most [`MAX_WRITES_PER_REQUEST`]) to `table`, retrying what stays
/// unprocessed and transient errors as `retries` allows. A missing table fails at once with
/// `not_found()`. `Err`: why it gave up, and the writes that did not land.
pub(crate) async fn batch_write(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    requests: Vec<WriteRequest>,
    retries: Retries,
    not_found: &(dyn Fn() -> Error + Send + Sync),
) -> Result<(), GaveUp<Vec<WriteRequest>>> {
    let policy = BatchWrite { table, not_found };
    retry(&policy, retries, requests, |pending| {
        dynamodb
            .batch_write_item()
            .request_items(table.as_str(), pending.clone())
            .send()
    })
    .await
}

/// BatchWriteItem of one request: UnprocessedItems are retried as the part left, transient
/// errors whole; a missing table fails.
struct BatchWrite<'a> {
    table: &'a TableName,
    not_found: &'a (dyn Fn() -> Error + Send + Sync),
}

impl RetryPolicy for BatchWrite<'_> {
    type Request = Vec<WriteRequest>;
    type Answer = Result<BatchWriteItemOutput, SdkError<BatchWriteItemError, HttpResponse>>;
    type Output = ();

    fn operation(&self) -> &'static str {
        BATCH_WRITE_ITEM
    }

    fn judge(&self, answer: Self::Answer) -> Verdict<(), Vec<WriteRequest>> {
        let table = self.table;
        match answer {
            Ok(output) => {
                let rest = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table.as_str()))
                    .unwrap_or_default();
                if rest.is_empty() {
                    return Verdict::Done(());
                }
                let why = format!(
                    "on table {table}: {} items stayed unprocessed (throttled)",
                    rest.len()
                );
                Verdict::RetryPart(
                    rest,
                    Error::aws(BATCH_WRITE_ITEM, AwsErrorKind::Throttled, why),
                )
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(BatchWriteItemError::is_resource_not_found_exception) =>
            {
                Verdict::Fail((self.not_found)())
            }
            Err(err) => Verdict::after(aws_error_with(BATCH_WRITE_ITEM, err, |description| {
                format!("on table {table}: {description}")
            })),
        }
    }
}
