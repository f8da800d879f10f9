//! The records of the whole table that a selection keeps: a Scan (plain, parallel
//! segments, or one worker's segment) with a filter expression, or an arrival window read
//! through the time index, one Query per shard merged by arrival time.

use async_stream::stream;
use futures::{Stream, StreamExt};

use super::pages::{cap, convert, merge_by_arrival, page_limit, resolve};
use super::{
    ArchiveReader, PAGE_RETRY_BUDGET, ReadOptions, RecordStream, TimeIndexUse, time_index,
};
use crate::aws::expression::{Expression, KeyFilters, arrival_key_condition, selection_filter};
use crate::aws::send_with_retries;
use crate::aws::streams::list_shards;
use crate::aws::tables::TableInfo;
use crate::domain::record::ArchiveRecord;
use crate::domain::selection::{ScanSplit, Selection};
use crate::error::Error;
use crate::read::locate::stream_unreadable;

impl ArchiveReader {
    /// Every record of the table that `selection` keeps, optionally read by a parallel
    /// scan whose segments are merged into one stream.
    pub(super) fn scan(
        &self,
        selection: Selection,
        options: ReadOptions,
    ) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
        let archive = self.clone();
        let limit = selection.limit();
        let inner = stream! {
            let table = match archive.check_table().await {
                Ok(table) => table,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            match archive.index_read(table.as_ref(), &selection, &options).await {
                Ok(Some((index, shards))) => {
                    let expression = selection_filter(&selection, KeyFilters::Excluded);
                    let page = options.page_size.map_or(time_index::PAGE_ITEMS, |size| {
                        size.clamp(1, i32::MAX as u32) as i32
                    });
                    let readers: Vec<RecordStream> = shards
                        .into_iter()
                        .map(|shard| {
                            archive.clone().query_shard(
                                index.clone(),
                                shard,
                                selection.clone(),
                                expression.clone(),
                                page,
                            )
                        })
                        .collect();
                    let mut merged = merge_by_arrival(readers);
                    while let Some(result) = merged.next().await {
                        yield result;
                    }
                    return;
                }
                Ok(None) => {}
                Err(err) => {
                    yield Err(err);
                    return;
                }
            }
            let expression = selection_filter(&selection, KeyFilters::Included);
            let page = page_limit(options.page_size, expression.is_none(), limit);
            let parts: Vec<Option<(u32, u32)>> = match selection.split() {
                ScanSplit::Worker(worker) => vec![Some((worker.index(), worker.total()))],
                ScanSplit::Parallel(segments) => {
                    (0..segments).map(|segment| Some((segment, segments))).collect()
                }
                ScanSplit::Whole => vec![None],
            };
            let readers: Vec<RecordStream> = parts
                .into_iter()
                .map(|part| {
                    archive.clone().scan_segment(selection.clone(), expression.clone(), part, page)
                })
                .collect();
            let mut merged = futures::stream::select_all(readers);
            while let Some(result) = merged.next().await {
                yield result;
            }
        };
        cap(resolve(self.objects.clone(), inner), limit)
    }

    /// The time index and the shards to query for `selection`, or `None` (with the reason
    /// logged) for a Scan. An error listing the shards that is not "the stream is gone or
    /// unreadable" fails the read: falling back then would make workers of one replay
    /// split the work two different ways.
    async fn index_read(
        &self,
        table: Option<&TableInfo>,
        selection: &Selection,
        options: &ReadOptions,
    ) -> Result<Option<(String, Vec<String>)>, Error> {
        if !selection.arrived().is_bounded() {
            return Ok(None);
        }
        if options.time_index == TimeIndexUse::Never {
            tracing::info!(table = %self.config.table, "--no-time-index: scanning the whole table for the arrival window");
            return Ok(None);
        }
        let table_name = &self.config.table;
        let index = match table.and_then(TableInfo::time_index) {
            Some(index) if index.is_active() => index.name.clone(),
            Some(index) => {
                tracing::info!(table = %table_name, index = %index.name, status = %index.status, backfilling = index.backfilling, "the time index is not ready: scanning the whole table for the arrival window");
                return Ok(None);
            }
            None => {
                tracing::info!(table = %table_name, "no time index (kinarch setup --time-index adds one): scanning the whole table for the arrival window");
                return Ok(None);
            }
        };
        let listed = match list_shards(&self.kinesis, &self.config.stream, None).await {
            Ok(listed) => listed,
            Err(err) if stream_unreadable(&err) => {
                tracing::info!(stream = %self.config.stream, error = %err, "the stream's shards cannot be listed, so the time index cannot be queried: scanning the whole table for the arrival window");
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let shards = match selection.worker() {
            None => time_index::shards_to_query(&listed),
            Some(worker) => {
                let groups = time_index::shard_groups(&listed);
                let shards = time_index::shards_of_worker(&groups, worker.index(), worker.total());
                tracing::info!(segment = %worker, groups = groups.len(), shards = shards.len(), "with the time index, --segment splits by shard: this worker reads its share of the shard groups");
                shards
            }
        };
        tracing::info!(table = %table_name, %index, shards = shards.len(), "reading the arrival window through the time index: a Query per shard, merged by arrival time");
        Ok(Some((index, shards)))
    }

    /// The records of one shard in the arrival window, through the time index, in
    /// [`time_index::arrival_order`]. The window is the key condition (see
    /// [`arrival_key_condition`]); the other bounds go in a filter expression that names no
    /// key attribute (DynamoDB refuses those in a Query), and Rust checks every bound again.
    fn query_shard(
        self,
        index: String,
        shard: String,
        selection: Selection,
        filter: Option<Expression>,
        page: i32,
    ) -> RecordStream {
        Box::pin(stream! {
            let condition = arrival_key_condition(&shard, &selection.arrived());
            let mut call = self
                .dynamodb
                .query()
                .table_name(self.config.table.as_str())
                .index_name(index)
                .limit(page)
                .key_condition_expression(condition.text);
            for (name, value) in condition.names {
                call = call.expression_attribute_names(name, value);
            }
            for (name, value) in condition.values {
                call = call.expression_attribute_values(name, value);
            }
            if let Some(filter) = filter {
                call = call.filter_expression(filter.text);
                for (name, value) in filter.names {
                    call = call.expression_attribute_names(name, value);
                }
                for (name, value) in filter.values {
                    call = call.expression_attribute_values(name, value);
                }
            }
            let mut order = time_index::TieOrder::default();
            let mut pages = std::pin::pin!(self.query_call_pages(call));
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    Err(err) => {
                        yield Err(err);
                        return;
                    }
                };
                let mut records = Vec::new();
                for item in page {
                    match convert(&item, |r| selection.matches(r)) {
                        Some(Ok(record)) => records.push(record),
                        Some(Err(err)) => yield Err(err),
                        None => {}
                    }
                }
                for record in order.page(records) {
                    yield Ok(record);
                }
            }
            for record in order.finish() {
                yield Ok(record);
            }
        })
    }

    /// The records of one scan segment (or of the whole table when `segment` is `None`).
    fn scan_segment(
        self,
        selection: Selection,
        filter: Option<Expression>,
        segment: Option<(u32, u32)>,
        page: Option<i32>,
    ) -> RecordStream {
        Box::pin(stream! {
            let mut call = self
                .dynamodb
                .scan()
                .table_name(self.config.table.as_str())
                .set_limit(page);
            if let Some((segment, total)) = segment {
                call = call.segment(segment as i32).total_segments(total as i32);
            }
            if let Some(filter) = filter {
                call = call
                    .filter_expression(filter.text)
                    .set_expression_attribute_names(Some(filter.names))
                    .set_expression_attribute_values(Some(filter.values));
            }
            let archive = self.clone();
            let mut pages = std::pin::pin!(self.paginate(move |start| {
                let request = call.clone().set_exclusive_start_key(start);
                let archive = archive.clone();
                async move {
                    let output = send_with_retries(PAGE_RETRY_BUDGET, || request.clone().send(), |e| archive.read_error("DynamoDB.Scan", e)).await?;
                    Ok((output.items.unwrap_or_default(), output.scanned_count, output.last_evaluated_key))
                }
            }));
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    Err(err) => {
                        yield Err(err);
                        return;
                    }
                };
                for item in page {
                    if let Some(result) = convert(&item, |r| selection.matches(r)) {
                        yield result;
                    }
                }
            }
        })
    }
}
