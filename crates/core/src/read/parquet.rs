//! Reading the Parquet archive (`--source parquet`): the files a selection may touch are
//! listed (only the hours of an arrival window: see
//! [`listing_prefixes`]), those whose key rules
//! them out (hour, sequence range) are skipped, and the rest are read by ranged GETs through
//! [`crate::parquet::read_file`], which prunes row groups by statistics and bloom filter.
//!
//! Order and duplicates: a shard's records come in sequence order, shard after shard in
//! shard-id order (a parent before the children of a reshard, so a key's records keep
//! their order). Files whose sequence ranges overlap (a batch delivered again with other
//! boundaries) are read together and each record is returned once
//! ([`read_runs`]). A file deleted after the listing (compacted: see [`crate::compact`]) is
//! replaced by the files of its hour that now hold its sequence range (`RunReader`). A
//! worker's share (`--segment I/N`) is a set of partition keys
//! ([`WorkerSegment::owns_key`](crate::domain::selection::WorkerSegment::owns_key)).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_stream::stream;
use bytes::Bytes;
use chrono::Utc;
use futures::future::{BoxFuture, FutureExt};
use futures::{Stream, StreamExt};

use super::ArchiveReader;
use super::pages::cap;
use crate::aws::error::AwsErrorKind;
use crate::aws::objects::{ListedObject, ObjectStore};
use crate::domain::overflow::ObjectLocation;
use crate::domain::parquet::{
    FileKey, ParquetTarget, Store, hour_prefix, listing_prefixes, may_hold, may_hold_sequence,
    read_parts, read_runs,
};
use crate::domain::record::ArchiveRecord;
use crate::domain::selection::Selection;
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;
use crate::parquet::{ByteSource, read_file};

/// Files read ahead of the consumer at most (each is a batch's file: small).
const FILES_AHEAD: usize = 4;

/// How many times a reader lists an hour again for the files that replaced one that was
/// deleted under it (a compaction), when those are deleted too (another compaction).
const RELISTS: usize = 3;

/// An object of the Parquet archive, read by ranged GETs. `gone` is set when S3 answers
/// that the object does not exist (deleted after the listing: compacted).
struct S3File {
    objects: ObjectStore,
    location: ObjectLocation,
    size: u64,
    gone: Arc<AtomicBool>,
}

impl ByteSource for S3File {
    fn size(&self) -> u64 {
        self.size
    }

    fn read(&self, range: Range<u64>) -> BoxFuture<'static, Result<Bytes, Error>> {
        let objects = self.objects.clone();
        let location = self.location.clone();
        let gone = self.gone.clone();
        async move {
            let read = objects.read_range(&location, range).await;
            if read
                .as_ref()
                .is_err_and(|e| e.aws_kind() == Some(AwsErrorKind::NotFound))
            {
                gone.store(true, Ordering::Relaxed);
            }
            read
        }
        .boxed()
    }

    fn name(&self) -> String {
        self.location.to_string()
    }
}

impl ArchiveReader {
    /// The records of `selection` split between the table and the Parquet archive at the
    /// marker's times ([`ArchiveSource::Auto`](super::ArchiveSource::Auto), [`read_parts`]).
    pub(super) fn read_split(
        &self,
        selection: Selection,
        options: super::ReadOptions,
    ) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
        let archive = self.clone();
        let limit = selection.limit();
        let inner = stream! {
            let Some(target) = archive.config.parquet.clone() else {
                return;
            };
            let marker = match archive.files.marker(&target, &archive.config.stream).await {
                Ok(marker) => marker,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            let by_key = selection.partition_key().is_some();
            let parts = read_parts(&selection.arrived(), by_key, marker.as_ref());
            let from_table = parts.iter().any(|(store, _)| *store == Store::Table);
            let from_parquet = parts.iter().any(|(store, _)| *store == Store::Parquet);
            tracing::info!(
                stream = %archive.config.stream,
                parquet_since = ?marker.as_ref().and_then(|m| m.parquet_since),
                tiered_before = ?marker.as_ref().and_then(|m| m.tiered_before),
                from_table,
                from_parquet,
                parts = ?parts,
                "a read split between the table and the Parquet archive"
            );
            let spans_both = from_table && from_parquet;
            if spans_both && selection.worker().is_some() {
                yield Err(Error::InvalidInput(format!(
                    "this selection spans the table and the Parquet archive of stream {} \
                     (marker {:?}), which divide keys among --segment workers differently: \
                     pass --source table or --source parquet",
                    archive.config.stream,
                    marker.as_ref().map(|m| String::from_utf8_lossy(&m.to_json()).into_owned()),
                )));
                return;
            }
            let part = |window| {
                let mut spec = selection.spec();
                spec.arrived = window;
                Selection::new(spec).map_err(Error::Selection)
            };
            for (store, window) in parts {
                let part = match part(window) {
                    Ok(part) => part,
                    Err(err) => {
                        yield Err(err);
                        continue;
                    }
                };
                let mut records: super::RecordStream = match store {
                    Store::Table => archive.read(&part, super::ReadOptions {
                        source: super::ArchiveSource::Table,
                        ..options
                    }),
                    Store::Parquet => Box::pin(archive.read_parquet(target.clone(), part)),
                };
                while let Some(record) = records.next().await {
                    // An error that ends a part's stream ends this one too.
                    let fatal = record.as_ref().is_err_and(|e| !e.is_per_record());
                    yield record;
                    if fatal {
                        return;
                    }
                }
            }
        };
        cap(inner, limit)
    }

    /// When the stream's Parquet archive (the configured one) began: the marker object's
    /// `parquetSince` (see [`ParquetMarker`](crate::domain::parquet::ParquetMarker)); `None` without a Parquet archive or a marker.
    pub async fn parquet_start(&self) -> Result<Option<chrono::DateTime<Utc>>, Error> {
        match &self.config.parquet {
            Some(target) => Ok(self
                .files
                .marker(target, &self.config.stream)
                .await?
                .and_then(|marker| marker.parquet_since)),
            None => Ok(None),
        }
    }

    /// The records of `selection` in the Parquet archive under `target`.
    pub(super) fn read_parquet(
        &self,
        target: ParquetTarget,
        selection: Selection,
    ) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
        let archive = self.clone();
        let limit = selection.limit();
        let inner = stream! {
            let files = match archive.parquet_files(&target, &selection).await {
                Ok(files) => files,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            tracing::info!(
                stream = %archive.config.stream,
                files = files.len(),
                "Parquet files that may hold the selection"
            );
            let reader = RunReader {
                objects: archive.files.clone(),
                counters: archive.parquet.clone(),
                target: target.clone(),
                stream: archive.config.stream.clone(),
                selection: selection.clone(),
            };
            let mut runs = futures::stream::iter(read_runs(files))
                .map(move |run| {
                    let reader = reader.clone();
                    async move { reader.read(run).await }
                })
                .buffered(FILES_AHEAD);
            while let Some((errors, records)) = runs.next().await {
                for err in errors {
                    yield Err(err);
                }
                for record in records {
                    yield Ok(record);
                }
            }
        };
        cap(inner, limit)
    }

    /// The files under `target` that may hold records of `selection`, with their listing.
    async fn parquet_files(
        &self,
        target: &ParquetTarget,
        selection: &Selection,
    ) -> Result<Vec<(FileKey, ListedObject)>, Error> {
        let window = selection.arrived();
        let mut files = Vec::new();
        for prefix in listing_prefixes(target, &self.config.stream, &window, Utc::now()) {
            let objects = self.files.list(target.bucket(), &prefix).await?;
            self.parquet.listed(objects.len() as u64);
            for listed in objects {
                let Some(key) = FileKey::parse(&listed.location.key) else {
                    continue;
                };
                if may_hold(&key, &window) && may_hold_sequence(&key, selection.sequence()) {
                    files.push((key, listed));
                }
            }
        }
        Ok(files)
    }
}

/// Reads the runs of one read (see [`read_runs`]): every file of a run, its rows sorted and
/// each kept once.
///
/// A file deleted after the listing (a compaction replaced it: see [`crate::compact`],
/// which writes the new file before it deletes the old ones) is replaced by the files of
/// its hour and shard that now hold its sequence range, listed again: only their rows in
/// the missing file's range are kept, so no record is missed and none is returned twice
/// (runs never share a sequence number). Files written by other tools are never deleted
/// under a reader by kinarch; a file gone with no file holding its range is an
/// [`Error::ParquetFile`].
#[derive(Clone)]
struct RunReader {
    objects: ObjectStore,
    counters: crate::parquet::ParquetCounters,
    target: ParquetTarget,
    stream: crate::domain::names::StreamName,
    selection: Selection,
}

impl RunReader {
    /// The errors and the records of `run`, in (sequence, sub-sequence) order, each once.
    async fn read(&self, run: Vec<(FileKey, ListedObject)>) -> (Vec<Error>, Vec<ArchiveRecord>) {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        for (key, listed) in run {
            if !self
                .read_file(listed, None, &mut records, &mut errors)
                .await
            {
                self.read_replacements(&key, &mut records, &mut errors)
                    .await;
            }
        }
        records.sort_by(|a: &ArchiveRecord, b: &ArchiveRecord| {
            (&a.sequence_number, a.sub_sequence_number)
                .cmp(&(&b.sequence_number, b.sub_sequence_number))
        });
        records.dedup_by(|a, b| {
            a.sequence_number == b.sequence_number && a.sub_sequence_number == b.sub_sequence_number
        });
        (errors, records)
    }

    /// Reads one file's rows the selection keeps (and, with `range`, only those in it) into
    /// `records`; `false` when the object is gone (then nothing of it is kept).
    async fn read_file(
        &self,
        listed: ListedObject,
        range: Option<(&SequenceNumber, &SequenceNumber)>,
        records: &mut Vec<ArchiveRecord>,
        errors: &mut Vec<Error>,
    ) -> bool {
        let gone = Arc::new(AtomicBool::new(false));
        let source = Arc::new(S3File {
            objects: self.objects.clone(),
            location: listed.location,
            size: listed.size,
            gone: gone.clone(),
        });
        let worker = self.selection.worker();
        let mut rows = Vec::new();
        let mut failed = Vec::new();
        let mut stream = std::pin::pin!(read_file(
            source,
            self.selection.clone(),
            self.counters.clone()
        ));
        while let Some(row) = stream.next().await {
            match row {
                Ok(record)
                    if worker.is_none_or(|w| w.owns_key(&record.partition_key))
                        && range.is_none_or(|(first, last)| {
                            record.sequence_number >= *first && record.sequence_number <= *last
                        }) =>
                {
                    rows.push(record)
                }
                Ok(_) => {}
                Err(err) => failed.push(err),
            }
        }
        if gone.load(Ordering::Relaxed) {
            return false;
        }
        records.append(&mut rows);
        errors.append(&mut failed);
        true
    }

    /// The rows of the file `missing` (gone since the listing), from the files of its hour
    /// and shard that now overlap its sequence range.
    async fn read_replacements(
        &self,
        missing: &FileKey,
        records: &mut Vec<ArchiveRecord>,
        errors: &mut Vec<Error>,
    ) {
        let location = format!(
            "s3://{}/{}",
            self.target.bucket(),
            missing.key(&self.target, &self.stream)
        );
        let prefix = hour_prefix(&self.target, &self.stream, missing.hour);
        for _ in 0..RELISTS {
            let listed = match self.objects.list(self.target.bucket(), &prefix).await {
                Ok(listed) => listed,
                Err(err) => {
                    errors.push(err);
                    return;
                }
            };
            self.counters.listed(listed.len() as u64);
            let covering: Vec<ListedObject> = listed
                .into_iter()
                .filter(|object| {
                    FileKey::parse(&object.location.key).is_some_and(|key| {
                        key.shard_id == missing.shard_id
                            && key.first <= missing.last
                            && key.last >= missing.first
                    })
                })
                .collect();
            if covering.is_empty() {
                break;
            }
            tracing::info!(
                file = %location,
                replaced_by = covering.len(),
                "a file was deleted after the listing (compacted): reading the files that now hold its records"
            );
            let mut rows = Vec::new();
            let mut failed = Vec::new();
            let mut complete = true;
            for object in covering {
                let range = Some((&missing.first, &missing.last));
                if !self.read_file(object, range, &mut rows, &mut failed).await {
                    complete = false;
                    break;
                }
            }
            if complete {
                records.append(&mut rows);
                errors.append(&mut failed);
                return;
            }
        }
        errors.push(Error::ParquetFile {
            location,
            reason: "it was deleted after the listing and no file of its hour and shard now holds its sequence range"
                .to_owned(),
        });
    }
}

/// Every row of one file, read whole (one GetObject): what compaction and `kinarch tier`
/// check files with. A file that does not exist is an [`Error::ParquetFile`].
pub(crate) async fn read_whole_file(
    objects: &ObjectStore,
    at: &ObjectLocation,
) -> Result<Vec<ArchiveRecord>, Error> {
    let Some(bytes) = objects.get(at).await? else {
        return Err(Error::ParquetFile {
            location: at.to_string(),
            reason: "it does not exist (deleted meanwhile: compacted by another run?)".to_owned(),
        });
    };
    let file = Arc::new(crate::parquet::MemoryFile::new(at.to_string(), bytes));
    futures::TryStreamExt::try_collect(read_file(
        file,
        Selection::all(),
        crate::parquet::ParquetCounters::default(),
    ))
    .await
}

/// The newest file of each shard under `target` for `stream` among those of the UTC day of
/// `now` and the day before (a listing of the whole history could take long): how far
/// behind the Parquet archive is. Shards without a file in those two days are left out.
pub async fn newest_files(
    objects: &ObjectStore,
    target: &ParquetTarget,
    stream: &crate::domain::names::StreamName,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<NewestFile>, Error> {
    let mut newest: std::collections::BTreeMap<String, NewestFile> = Default::default();
    for day in [now - chrono::Duration::days(1), now] {
        let prefix = crate::domain::parquet::date_prefix(target, stream, day);
        for listed in objects.list(target.bucket(), &prefix).await? {
            let Some(key) = FileKey::parse(&listed.location.key) else {
                continue;
            };
            let newer = newest
                .get(&key.shard_id)
                .is_none_or(|seen| (key.hour, &key.last) > (seen.key.hour, &seen.key.last));
            if newer {
                newest.insert(
                    key.shard_id.clone(),
                    NewestFile {
                        key,
                        written: listed.last_modified,
                    },
                );
            }
        }
    }
    Ok(newest.into_values().collect())
}

/// A shard's newest file in the Parquet archive (see [`newest_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestFile {
    /// What its key says: the shard, the arrival hour, the last sequence number.
    pub key: FileKey,
    /// When it was written, as S3 says.
    pub written: Option<chrono::DateTime<Utc>>,
}
