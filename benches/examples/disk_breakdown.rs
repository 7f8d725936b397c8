//! Where a block's bytes go on the load harness's default workload: the workload is
//! generated, written into a fresh database and snapshotted (head → one block) as the
//! harness does, then the block's files are measured, and each metric kind is encoded
//! on its own to show its share of the chunks.
//!
//! `cargo run --release -p vigil-bench --example disk_breakdown [series] [span_h]`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vigil_bench::workload::{WorkloadSpec, generate};
use vigil_storage::block::{compress_frame, encode_chunk};
use vigil_storage::{Appendable, Db, DbOptions, Labels, MatchOp, Matcher, Querier, Sample, SelectHints};

/// Raw bytes per compressed group, as a block frame gathers them.
const FRAME: usize = 64 << 10;
/// Samples per chunk at rest.
const CHUNK: usize = 1920;

fn kind(name: &str) -> &'static str {
    match name {
        "node_cpu_seconds_total" => "float counter (cpu seconds)",
        "http_request_duration_seconds_sum" => "float counter (histogram _sum)",
        "http_request_duration_seconds_bucket" => "int counter (bucket)",
        n if n.starts_with("node_network") => "int counter (network)",
        "http_requests_total" | "http_request_duration_seconds_count" => "int counter (requests)",
        _ => "gauge",
    }
}

/// A kind's samples, its encoded chunks, and the same chunks with every value zeroed
/// (what its timestamps cost).
type KindChunks = (usize, Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Compressed size of `chunks` packed into frames as a block does.
fn framed(chunks: &[Vec<u8>]) -> usize {
    let (mut raw, mut total) = (Vec::new(), 0);
    for c in chunks {
        raw.extend_from_slice(c);
        if raw.len() >= FRAME {
            total += compress_frame(&raw).expect("compress").len() + 12;
            raw.clear();
        }
    }
    if !raw.is_empty() {
        total += compress_frame(&raw).expect("compress").len() + 12;
    }
    total
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let series = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let span_h: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let spec = WorkloadSpec {
        series,
        interval: Duration::from_secs(15),
        span: Duration::from_secs(span_h * 3600),
        churn_per_hour: 0.1,
        seed: 42,
        end_ms: 1_700_000_040_000,
        samples_per_request: 2000,
        shards: 4,
    };
    let w = generate(&spec)?;
    let mut all: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for req in w.shards.iter().flatten() {
        let wr = vigil_ingest::remote_write::decode_v1(&req.body, 1 << 28)?;
        for ts in wr.timeseries {
            let labels = Labels::from_pairs(ts.labels.iter().map(|l| {
                (
                    String::from_utf8_lossy(&l.name).into_owned(),
                    String::from_utf8_lossy(&l.value).into_owned(),
                )
            }));
            let e = all.entry(labels).or_default();
            e.extend(ts.samples.iter().map(|s| Sample::new(s.timestamp, s.value)));
        }
    }
    for v in all.values_mut() {
        v.sort_by_key(|s| s.t);
    }
    println!("workload: {} series, {} samples", all.len(), w.samples);

    // Whole block, as the harness measures it.
    let dir = tempfile::tempdir()?;
    let db = Db::open(&dir.path().join("data"), DbOptions::default())?;
    for chunk in all.iter().collect::<Vec<_>>().chunks(500) {
        let mut app = db.appender();
        for (l, s) in chunk {
            app.append_many(l, s);
        }
        app.commit()?;
    }
    let t0 = Instant::now();
    let metas = db.snapshot(&dir.path().join("snap"), true)?;
    let took = t0.elapsed();
    let meta = metas.last().expect("a block");
    let bdir = dir.path().join("snap").join("blocks").join(&meta.ulid);
    let size = |n: &str| std::fs::metadata(bdir.join(n)).map(|m| m.len()).unwrap_or(0);
    let n = w.samples as f64;
    let (index, chunks) = (size("index"), size("chunks"));
    println!(
        "block: index {index} B ({:.3} B/sample), chunks {chunks} B ({:.3} B/sample), total {:.3} B/sample; snapshot took {took:?}",
        index as f64 / n,
        chunks as f64 / n,
        (index + chunks + size("meta.json")) as f64 / n
    );

    if let Ok(ix) = std::fs::read(bdir.join("index")) {
        let toc = &ix[ix.len() - 104..ix.len() - 4];
        let names = ["symbols", "series", "series offsets", "postings", "postings table"];
        for (i, name) in names.iter().enumerate() {
            let len = u64::from_le_bytes(toc[i * 20 + 8..i * 20 + 16].try_into()?);
            println!("  index {name}: {len} B ({:.4} B/sample)", len as f64 / n);
        }
    }

    // Reading the block back: every series, and one histogram's buckets.
    drop(db);
    let snap = Db::open(&dir.path().join("snap"), DbOptions::default())?;
    for (what, name, op) in [
        ("all series", ".+", MatchOp::Regex),
        ("buckets", "http_request_duration_seconds_bucket", MatchOp::Equal),
        ("cpu seconds", "node_cpu_seconds_total", MatchOp::Equal),
    ] {
        let m = [Matcher::new(op, "__name__", name)?];
        let hints = SelectHints { start: i64::MIN, end: i64::MAX, step: 0, range: 0, func: None };
        let mut best = Duration::MAX;
        let mut count = 0usize;
        for _ in 0..3 {
            let t = Instant::now();
            count = 0;
            for mut s in snap.select(&m, &hints)? {
                while s.samples.next().is_some() {
                    count += 1;
                }
            }
            best = best.min(t.elapsed());
        }
        println!(
            "read {what}: {count} samples in {best:?} ({:.1} ns/sample)",
            best.as_nanos() as f64 / count as f64
        );
    }

    // Per kind: values and timestamps apart.
    let mut by_kind: BTreeMap<&str, KindChunks> = BTreeMap::new();
    for (l, s) in &all {
        let k = by_kind.entry(kind(l.metric_name().unwrap_or(""))).or_default();
        for part in s.chunks(CHUNK) {
            let mut b = Vec::new();
            encode_chunk(part, &mut b);
            k.1.push(b);
            let zero: Vec<Sample> = part.iter().map(|s| Sample::new(s.t, 0.0)).collect();
            let mut b = Vec::new();
            encode_chunk(&zero, &mut b);
            k.2.push(b);
        }
        k.0 += s.len();
    }
    println!(
        "{:<32} {:>9} {:>8} {:>10} {:>10} {:>10}",
        "kind", "samples", "share", "raw B/s", "zstd B/s", "ts-only"
    );
    let mut tot = 0;
    for (k, (count, chunks, ts)) in &by_kind {
        let raw: usize = chunks.iter().map(Vec::len).sum();
        let z = framed(chunks);
        tot += z;
        println!(
            "{k:<32} {count:>9} {:>7.1}% {:>10.3} {:>10.3} {:>10.3}  (contributes {:.3} B/sample overall)",
            100.0 * *count as f64 / n,
            raw as f64 / *count as f64,
            z as f64 / *count as f64,
            framed(ts) as f64 / *count as f64,
            z as f64 / n
        );
    }
    println!("sum of kinds framed apart: {:.3} B/sample", tot as f64 / n);

    // All chunks in label order, framed at other sizes and zstd levels.
    let mut raw_all = Vec::new();
    for s in all.values() {
        for part in s.chunks(CHUNK) {
            encode_chunk(part, &mut raw_all);
        }
    }
    for frame in [64usize << 10, 256 << 10, 1 << 20] {
        for level in [3, 9, 19] {
            let t = Instant::now();
            let z: usize =
                raw_all.chunks(frame).map(|f| zstd::bulk::compress(f, level).expect("zstd").len() + 12).sum();
            println!(
                "frame {:>5} KiB level {level:>2}: {:.3} B/sample, {:?}",
                frame >> 10,
                z as f64 / n,
                t.elapsed()
            );
        }
    }

    Ok(())
}
