//! The replay frame: `ReplayFrame::encode` (reinject --metadata, per record sent) and
//! `ReplayFrame::parse` (consumers reading replayed records).

// criterion_group! makes an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinarch_core::domain::frame::{ReplayFrame, ReplayMetadata};

mod common;

fn frame(c: &mut Criterion) {
    let record = common::record(42, 100);
    let metadata = ReplayMetadata::of(&record, Some("orders"));
    let framed = ReplayFrame::encode(&metadata, &record.data, b'|');
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode (100-byte payload)", |b| {
        b.iter(|| ReplayFrame::encode(black_box(&metadata), black_box(&record.data), b'|'))
    });
    group.bench_function("parse (100-byte payload)", |b| {
        b.iter(|| ReplayFrame::parse(black_box(&framed), b'|'))
    });
    group.bench_function("parse (unframed)", |b| {
        b.iter(|| ReplayFrame::parse(black_box(&record.data), b'|'))
    });
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
