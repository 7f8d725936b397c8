//! Remote-write 1.0 ingest speed: decoding a 10,000-sample request (1,000 series of
//! 10 samples, 6 labels each, like a Prometheus sender's batch) and decoding plus
//! appending it into the in-memory store.
//!
//! Run: `cargo bench -p vigil-ingest --bench remote_write`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigil_ingest::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use vigil_ingest::remote_write::{Limits, decode_v1, encode_v1, write_v1};
use vigil_storage::memory::MemStorage;

/// Series per request.
const SERIES: usize = 1_000;
/// Samples per series: 10 × 1,000 = the 10k-sample request of the brief.
const SAMPLES_PER_SERIES: usize = 10;
/// Scrape interval between samples, in ms.
const STEP_MS: i64 = 15_000;
/// Decompression limit for the bench: far above the request size.
const MAX_DECOMPRESSED: usize = 64 << 20;

fn request() -> WriteRequest {
    let timeseries = (0..SERIES)
        .map(|i| TimeSeries {
            labels: vec![
                Label::new("__name__", format!("http_requests_total_{}", i % 50)),
                Label::new("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
                Label::new("job", "node"),
                Label::new("method", if i % 2 == 0 { "GET" } else { "POST" }),
                Label::new("path", format!("/api/v{}/items", i % 7)),
                Label::new("status", "200"),
            ],
            samples: (0..SAMPLES_PER_SERIES)
                .map(|j| Sample {
                    value: (i * j) as f64 * 0.5,
                    timestamp: 1_700_000_000_000 + j as i64 * STEP_MS,
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    WriteRequest { timeseries, metadata: vec![] }
}

fn bench(c: &mut Criterion) {
    let body = encode_v1(&request()).expect("encode");
    let mut group = c.benchmark_group("remote_write_v1");
    group.throughput(Throughput::Elements((SERIES * SAMPLES_PER_SERIES) as u64));
    group.bench_function("decode_10k_samples", |b| {
        b.iter(|| black_box(decode_v1(black_box(&body), MAX_DECOMPRESSED).expect("decode")))
    });
    group.bench_function("decode_and_append_10k_samples_memstorage", |b| {
        b.iter_batched(
            MemStorage::new,
            |store| {
                let req = decode_v1(&body, MAX_DECOMPRESSED).expect("decode");
                let report = write_v1(&store, req, &Limits::default()).expect("write");
                assert_eq!(report.samples_written, (SERIES * SAMPLES_PER_SERIES) as u64);
                store
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    println!("request body: {} bytes compressed", body.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
