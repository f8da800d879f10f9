//! The one test world of the end-to-end tests: a moto server, clients of the test's own
//! (Kinesis, DynamoDB, S3), and the fixtures every module builds on (a stream, a stream set
//! up with `kinarch setup`, an archive with records of chosen arrival times), plus
//! [`eventually`], the one poll loop.

use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use kinarch_core::ArchiveRecord;

use crate::cli::{Run, kinarch};
use crate::dynamo::{self, Item};
use crate::moto::Moto;
use crate::{kinesis, s3};

/// A moto server and clients of the test's own (not through any proxy).
pub struct World {
    /// The server.
    pub moto: Moto,
    /// Its SDK configuration.
    pub sdk: SdkConfig,
    /// Kinesis.
    pub kinesis: aws_sdk_kinesis::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// S3 (path-style, as moto on an IP address needs).
    pub s3: aws_sdk_s3::Client,
}

impl World {
    /// Starts moto server (see [`Moto::start`]) and makes the clients.
    pub async fn start() -> World {
        let moto = Moto::start();
        let sdk = moto.sdk_config().await;
        World {
            kinesis: aws_sdk_kinesis::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            s3: s3::client(&sdk),
            sdk,
            moto,
        }
    }

    /// Runs `kinarch ARGS` against this world's moto.
    pub async fn kinarch(&self, args: &[&str]) -> Run {
        kinarch(&self.moto, args).await
    }

    /// A stream of `shards` shards (ACTIVE); returns its ARN.
    pub async fn stream(&self, name: &str, shards: i32) -> String {
        kinesis::create_stream(&self.kinesis, name, shards).await
    }

    /// A stream of `shards` shards set up with `kinarch setup NAME MODE --yes` and `extra`
    /// options; returns its ARN.
    pub async fn set_up(&self, name: &str, shards: i32, mode: &str, extra: &[&str]) -> String {
        let arn = self.stream(name, shards).await;
        let args = [&["setup", name, mode, "--yes"][..], extra].concat();
        self.kinarch(&args).await.ok();
        arn
    }

    /// A stream `name` with `shards` shards tagged for ALL mode and its archive table holding
    /// `records`, archived at `archived_at` (items written straight into the table, so that
    /// arrival and archive times are the test's).
    pub async fn archived(
        &self,
        name: &str,
        shards: i32,
        records: &[ArchiveRecord],
        archived_at: DateTime<Utc>,
    ) {
        dynamo::archived_stream(&self.sdk, name, shards, records, archived_at).await;
    }

    /// Every item of `table`.
    pub async fn items(&self, table: &str) -> Vec<Item> {
        dynamo::scan_all(&self.dynamodb, table).await
    }

    /// Every item of `table`, none when it does not exist.
    pub async fn items_if_any(&self, table: &str) -> Vec<Item> {
        let exists = self
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .is_ok();
        match exists {
            true => self.items(table).await,
            false => Vec::new(),
        }
    }

    /// Waits until `table` holds at least `count` items (at most a minute).
    pub async fn wait_for_items(&self, table: &str, count: usize) {
        eventually(
            &format!("{table} holds {count} items"),
            Duration::from_secs(60),
            || async { (self.items_if_any(table).await.len() >= count).then_some(()) },
        )
        .await
    }

    /// Waits until stream `name` holds at least `count` records (at most a minute), and
    /// returns how many it holds.
    pub async fn wait_for_records(&self, name: &str, count: usize) -> usize {
        eventually(
            &format!("{name} holds {count} records"),
            Duration::from_secs(60),
            || async {
                let held = kinesis::read_all(&self.kinesis, name).await.len();
                (held >= count).then_some(held)
            },
        )
        .await
    }
}

/// Asks `check` every 100 ms until it answers `Some`, for at most `timeout`; panics naming
/// `what` when it never does. The one poll loop of the tests: a test waits for a state, never
/// for a time.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("waited {timeout:?} for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
