//! Remote-write decode throughput (samples/s): snappy plus protobuf decoding of the
//! harness's own requests, as the server's write endpoint does before appending.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_bench::workload::{DEFAULT_SAMPLES_PER_REQUEST, WorkloadSpec, generate};
use vigil_ingest::remote_write::decode_v1;

/// Decompressed-size limit passed to the decoder: far above one request.
const MAX_DECOMPRESSED: usize = 64 << 20;

fn decode(c: &mut Criterion) {
    let spec = WorkloadSpec {
        series: 2_000,
        interval: Duration::from_secs(15),
        span: Duration::from_secs(15 * 4),
        churn_per_hour: 0.0,
        seed: 1,
        end_ms: 1_700_000_000_000,
        samples_per_request: DEFAULT_SAMPLES_PER_REQUEST,
        shards: 1,
    };
    let workload = generate(&spec).expect("generate the workload");
    let req = workload.shards[0].iter().max_by_key(|r| r.samples).expect("at least one request").clone();
    let mut group = c.benchmark_group("remote_write");
    group.throughput(Throughput::Elements(req.samples as u64));
    group.bench_function("decode_v1_2000_samples", |b| {
        b.iter(|| decode_v1(black_box(&req.body), MAX_DECOMPRESSED).expect("decode"))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
