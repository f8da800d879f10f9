//! Write planning: `plan_all` (ALL: BatchWriteItem requests of 25) and `reduce_latest`
//! (LATEST: the newest record per key) on Lambda-sized batches.

// criterion_group! makes an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kinarch_core::domain::plan::{plan_all, reduce_latest};

mod common;

fn planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    for n in [1_000, 10_000] {
        group.throughput(Throughput::Elements(n as u64));
        let distinct = common::records(n, n);
        group.bench_with_input(BenchmarkId::new("plan_all", n), &distinct, |b, r| {
            b.iter(|| plan_all(black_box(r)))
        });
        let hundred_keys = common::records(n, 100);
        group.bench_with_input(
            BenchmarkId::new("reduce_latest (100 keys)", n),
            &hundred_keys,
            |b, r| b.iter(|| reduce_latest(black_box(r))),
        );
        group.bench_with_input(
            BenchmarkId::new("reduce_latest (distinct keys)", n),
            &distinct,
            |b, r| b.iter(|| reduce_latest(black_box(r))),
        );
    }
    group.finish();
}

criterion_group!(benches, planning);
criterion_main!(benches);
