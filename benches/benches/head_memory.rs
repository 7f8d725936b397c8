//! Resident memory per active series of the head, with full chunks spilled to
//! memory-mapped files: a probe, not a criterion bench.
//!
//! Run with `cargo bench -p vigil-bench --bench head_memory` (1M series by default;
//! `VIGIL_SERIES` and `VIGIL_SAMPLES` override the number of series and of samples per
//! series). Prints resident memory (from `/proc/self/statm`) before and after, and the
//! difference per series.
//!
//! Measured on the 2-core development VM (this bench uses the system allocator and one
//! thread): 1 000 000 series × 10 samples (open chunks only) 469 bytes per series;
//! 200 000 series × 130 samples (one full chunk spilled to disk, one open chunk) 625
//! bytes per series. Its values compress to a byte or two a sample, so an open chunk
//! here needs one 128-byte segment where a growing vector needed 32 to 64 bytes (it was
//! 443 and 548 with vectors); the server's workload, with chunks of ~355 bytes, went the
//! other way (1,147 to 922 bytes per series at a million, `vigil-load compare`).

use vigil_storage::{Appendable, Db, DbOptions, Labels};

/// Default number of series: the target of one million active series.
const DEFAULT_SERIES: usize = 1_000_000;

/// Default samples per series: one full 120-sample chunk (spilled to disk) plus an open
/// chunk with ten samples, what an active series looks like half an hour after a cut.
const DEFAULT_SAMPLES: i64 = 130;

/// Samples per commit, about what one remote-write request carries.
const BATCH: usize = 10_000;

/// Scrape interval in ms.
const INTERVAL_MS: i64 = 15_000;

/// Bytes per page, for `/proc/self/statm`.
const PAGE: u64 = 4096;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * PAGE
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = env_or("VIGIL_SERIES", DEFAULT_SERIES);
    let samples: i64 = env_or("VIGIL_SAMPLES", DEFAULT_SAMPLES);
    // Label sets shaped like a node-exporter fleet: 1000 metric names × hosts × a
    // per-series label, so postings have both large and tiny lists.
    let labels: Vec<Labels> = (0..n)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 1000)),
                ("instance", format!("host-{}:9100", (i / 1000) % 1000)),
                ("job", "node".to_string()),
                ("shard", (i / 1_000_000).to_string()),
            ])
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    let labels_bytes = resident_bytes();
    let started = std::time::Instant::now();
    for k in 0..samples {
        for batch in labels.chunks(BATCH) {
            let mut app = db.appender();
            for (j, l) in batch.iter().enumerate() {
                let t = 1_700_000_000_000 + k * INTERVAL_MS;
                if k == 0 {
                    // The head keeps the label set it first sees: give it its own copy, as
                    // a decoder would, so its memory is counted here.
                    app.append(&Labels::from_sorted_unchecked(l.to_vec()), t, j as f64);
                } else {
                    app.append(l, t, (k * 10 + j as i64) as f64);
                }
            }
            app.commit().expect("commit");
        }
    }
    let after = resident_bytes();
    let spilled: u64 = std::fs::read_dir(dir.path().join("chunks_head"))
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    println!(
        "series={n} samples/series={samples} ingest={:.1}s samples/s={:.0}",
        started.elapsed().as_secs_f64(),
        (n as f64 * samples as f64) / started.elapsed().as_secs_f64()
    );
    println!("resident before head={} MiB after={} MiB", labels_bytes >> 20, after >> 20);
    println!(
        "resident per series (head: series, labels, index, open chunk) = {} bytes",
        (after - labels_bytes) / n as u64
    );
    println!("head-chunks files (preallocated, mapped) = {} MiB", spilled >> 20);
    db.close().expect("close");
}
