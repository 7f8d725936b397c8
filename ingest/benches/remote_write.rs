//! Remote-write 1.0 ingest speed: decoding a 10,000-sample request (1,000 series of
//! 10 samples, 6 labels each, like a Prometheus sender's batch) and decoding plus
//! appending it into the in-memory store.
//!
//! The `ingest_realistic` group compares the three protocols on the same data: 500
//! series of 10 labels with 2 samples each, as remote write 1.0, remote write 2.0
//! (symbols table) and OTLP (protobuf, and JSON), each decoded, translated and
//! appended into the in-memory store.
//!
//! Run: `cargo bench -p vigil-ingest --bench remote_write`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigil_ingest::exemplars::ExemplarStore;
use vigil_ingest::otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use vigil_ingest::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use vigil_ingest::otlp::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use vigil_ingest::otlp::proto::resource::v1::Resource;
use vigil_ingest::otlp::{
    DeltaState, Encoding, OtlpOptions, decode_request, encode_request, translate, write_otlp,
};
use vigil_ingest::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use vigil_ingest::remote_write::proto_v2;
use vigil_ingest::remote_write::{
    Limits, V2Options, decode_v1, decode_v2, encode_v1, encode_v2, write_v1, write_v2,
};
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

/// Series in the realistic request.
const REAL_SERIES: usize = 500;
/// Samples per series in the realistic request.
const REAL_SAMPLES: usize = 2;
/// Metric names the series spread over.
const REAL_METRICS: usize = 25;
/// First sample time, ms.
const T0: i64 = 1_700_000_000_000;

/// The realistic data: per series, its 10 labels (`__name__`, `job`, `instance` and 7
/// more) and its samples.
/// One series of the realistic request: label pairs and (ms, value) samples.
type RealSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

fn realistic() -> Vec<RealSeries> {
    (0..REAL_SERIES)
        .map(|i| {
            let labels = vec![
                ("__name__".to_owned(), format!("app_request_duration_seconds_{}", i % REAL_METRICS)),
                ("cluster".to_owned(), "prod-eu-1".to_owned()),
                ("instance".to_owned(), "pod-7f9c:8080".to_owned()),
                ("job".to_owned(), "shop/checkout".to_owned()),
                ("method".to_owned(), ["GET", "POST", "PUT", "DELETE"][i % 4].to_owned()),
                ("namespace".to_owned(), "shop".to_owned()),
                ("region".to_owned(), "eu-west-1".to_owned()),
                ("route".to_owned(), format!("/api/v1/items/{}", i / REAL_METRICS)),
                ("status".to_owned(), ["200", "404", "500"][i % 3].to_owned()),
                ("zone".to_owned(), format!("eu-west-1{}", ["a", "b", "c"][i % 3])),
            ];
            let samples =
                (0..REAL_SAMPLES).map(|j| (T0 + j as i64 * STEP_MS, (i + j) as f64 * 0.25)).collect();
            (labels, samples)
        })
        .collect()
}

fn realistic_v1() -> WriteRequest {
    let timeseries = realistic()
        .into_iter()
        .map(|(labels, samples)| TimeSeries {
            labels: labels.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
            samples: samples.into_iter().map(|(timestamp, value)| Sample { value, timestamp }).collect(),
            ..Default::default()
        })
        .collect();
    WriteRequest { timeseries, metadata: vec![] }
}

fn realistic_v2() -> proto_v2::Request {
    let mut symbols = vec![String::new()];
    let mut index = std::collections::HashMap::new();
    let mut sym = |s: String| -> u32 {
        *index.entry(s.clone()).or_insert_with(|| {
            symbols.push(s);
            (symbols.len() - 1) as u32
        })
    };
    let timeseries = realistic()
        .into_iter()
        .map(|(labels, samples)| proto_v2::TimeSeries {
            labels_refs: labels.into_iter().flat_map(|(n, v)| [sym(n), sym(v)]).collect(),
            samples: samples
                .into_iter()
                .map(|(timestamp, value)| proto_v2::Sample { value, timestamp, start_timestamp: 0 })
                .collect(),
            ..Default::default()
        })
        .collect();
    proto_v2::Request { symbols, timeseries }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// The same series as OTLP gauges: `job`/`instance` from the resource, the other 7
/// labels as point attributes (names already valid, so translation keeps them).
fn realistic_otlp() -> ExportMetricsServiceRequest {
    let mut metrics: Vec<Metric> = (0..REAL_METRICS)
        .map(|m| Metric {
            name: format!("app_request_duration_seconds_{m}"),
            data: Some(metric::Data::Gauge(Gauge { data_points: vec![] })),
            ..Default::default()
        })
        .collect();
    for (i, (labels, samples)) in realistic().into_iter().enumerate() {
        let attributes: Vec<KeyValue> = labels
            .iter()
            .filter(|(n, _)| !["__name__", "job", "instance"].contains(&n.as_str()))
            .map(|(n, v)| kv(n, v))
            .collect();
        if let Some(metric::Data::Gauge(g)) = &mut metrics[i % REAL_METRICS].data {
            for (t, v) in samples {
                g.data_points.push(NumberDataPoint {
                    attributes: attributes.clone(),
                    time_unix_nano: t as u64 * 1_000_000,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    ..Default::default()
                });
            }
        }
    }
    let resource = Resource {
        attributes: vec![
            kv("service.namespace", "shop"),
            kv("service.name", "checkout"),
            kv("service.instance.id", "pod-7f9c:8080"),
        ],
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn bench_realistic(c: &mut Criterion) {
    let samples = (REAL_SERIES * REAL_SAMPLES) as u64;
    let v1 = encode_v1(&realistic_v1()).expect("encode v1");
    let v2 = encode_v2(&realistic_v2()).expect("encode v2");
    let otlp_pb = encode_request(&realistic_otlp(), Encoding::Protobuf);
    let otlp_json = encode_request(&realistic_otlp(), Encoding::Json);
    let mut group = c.benchmark_group("ingest_realistic");
    group.throughput(Throughput::Elements(samples));
    group.bench_function("rw1_decode_append", |b| {
        b.iter_batched(
            MemStorage::new,
            |store| {
                let req = decode_v1(&v1, MAX_DECOMPRESSED).expect("decode");
                let report = write_v1(&store, req, &Limits::default()).expect("write");
                assert_eq!(report.samples_written, samples);
                store
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rw2_decode_append", |b| {
        let exemplars = ExemplarStore::default();
        b.iter_batched(
            MemStorage::new,
            |store| {
                let req = decode_v2(&v2, MAX_DECOMPRESSED).expect("decode");
                let report = write_v2(&store, &exemplars, req, &V2Options::default()).expect("write");
                assert_eq!(report.samples_written, samples);
                store
            },
            BatchSize::SmallInput,
        )
    });
    for (name, body, encoding) in [
        ("otlp_protobuf_decode_append", &otlp_pb, Encoding::Protobuf),
        ("otlp_json_decode_append", &otlp_json, Encoding::Json),
    ] {
        group.bench_function(name, |b| {
            let (exemplars, deltas, opts) =
                (ExemplarStore::default(), DeltaState::new(), OtlpOptions::default());
            b.iter_batched(
                MemStorage::new,
                |store| {
                    let req = decode_request(body, encoding).expect("decode");
                    let translated = translate(&req, &opts).expect("translate");
                    let report = write_otlp(&store, &exemplars, &deltas, translated).expect("write");
                    assert_eq!(report.samples_written, samples);
                    store
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    println!(
        "realistic request bodies: rw1 {} B (snappy), rw2 {} B (snappy), otlp {} B (protobuf), {} B (json)",
        v1.len(),
        v2.len(),
        otlp_pb.len(),
        otlp_json.len()
    );
}

criterion_group!(benches, bench, bench_realistic);
criterion_main!(benches);
