//! Encode and decode throughput of the XOR chunk on realistic series shapes.
//!
//! Run with `cargo bench -p vigil-bench --bench chunk`. Each shape also prints its
//! compressed size in bytes per sample.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_storage::chunk::{MAX_CHUNK_BYTES, SAMPLES_PER_CHUNK, XorChunk, XorEncoder};

/// Samples per benchmark iteration: enough chunks that per-iteration overhead vanishes.
const SAMPLES: usize = 120_000;

/// Scrape interval of the generated series, in ms.
const INTERVAL_MS: i64 = 15_000;

/// A small deterministic generator (xorshift64*), so runs compare.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Timestamps of a scrape loop: a fixed interval plus a few ms of jitter.
fn timestamps(rng: &mut Rng) -> Vec<i64> {
    let start = 1_700_000_000_000i64;
    (0..SAMPLES as i64).map(|i| start + i * INTERVAL_MS + (rng.next_u64() % 5) as i64).collect()
}

/// The data shapes: a request counter, a float gauge doing a random walk, and a constant.
fn shapes() -> Vec<(&'static str, Vec<(i64, f64)>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ts = timestamps(&mut rng);
    let mut counter = 0.0;
    let counter: Vec<_> = ts
        .iter()
        .map(|&t| {
            counter += (rng.next_u64() % 200) as f64;
            (t, counter)
        })
        .collect();
    let mut gauge = 50.0;
    let gauge: Vec<_> = ts
        .iter()
        .map(|&t| {
            gauge += rng.unit() - 0.5;
            (t, gauge)
        })
        .collect();
    let constant: Vec<_> = ts.iter().map(|&t| (t, 1.0)).collect();
    vec![("counter", counter), ("gauge_random_walk", gauge), ("constant", constant)]
}

/// Encodes `samples` into chunks cut the way the head cuts them.
fn encode(samples: &[(i64, f64)]) -> Vec<XorChunk> {
    let mut chunks = Vec::with_capacity(samples.len() / SAMPLES_PER_CHUNK + 1);
    let mut enc = XorEncoder::new();
    for &(t, v) in samples {
        if enc.num_samples() >= SAMPLES_PER_CHUNK || enc.len_bytes() >= MAX_CHUNK_BYTES {
            chunks.push(std::mem::take(&mut enc).finish());
        }
        if enc.append(t, v).is_err() {
            unreachable!("generated timestamps increase");
        }
    }
    chunks.push(enc.finish());
    chunks
}

fn bench_chunk(c: &mut Criterion) {
    for (name, samples) in shapes() {
        let chunks = encode(&samples);
        let bytes: usize = chunks.iter().map(|c| c.as_bytes().len()).sum();
        println!(
            "{name}: {:.3} bytes/sample over {} chunks",
            bytes as f64 / samples.len() as f64,
            chunks.len()
        );

        let mut group = c.benchmark_group(format!("chunk/{name}"));
        group.throughput(Throughput::Elements(samples.len() as u64));
        group.bench_function("encode", |b| b.iter(|| encode(black_box(&samples))));
        group.bench_function("decode", |b| {
            b.iter(|| {
                let mut sum = 0.0;
                for chunk in black_box(&chunks) {
                    for s in chunk.iter() {
                        sum += s.v;
                    }
                }
                sum
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_chunk);
criterion_main!(benches);
