//! The write phase: pre-encoded remote-write bodies sent over N connections, one shard
//! each, in time order, with per-request latency and the server's CPU and memory.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::procfs;
use crate::stats::quantile;
use crate::workload::EncodedWorkload;

/// Failed request bodies kept for the report.
const KEPT_ERRORS: usize = 3;
/// Longest error body kept, in characters.
const KEPT_ERROR_CHARS: usize = 300;

/// What the write phase measured.
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    /// Samples in requests the server accepted (2xx).
    pub samples_ok: usize,
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (non-2xx or transport error).
    pub errors: usize,
    /// Requests never sent because the phase ran out of time.
    pub unsent: usize,
    /// The first error bodies.
    pub first_errors: Vec<String>,
    /// Wall time from the first request to the last response.
    pub wall: Duration,
    /// Median request latency.
    pub p50: Duration,
    /// 99th percentile request latency.
    pub p99: Duration,
    /// Server CPU seconds used during the phase, when its pid was given.
    pub server_cpu_s: Option<f64>,
    /// Server peak resident bytes after the phase, when its pid was given.
    pub server_peak_rss: Option<u64>,
}

impl WriteOutcome {
    /// Accepted samples per second of wall time.
    pub fn samples_per_s(&self) -> f64 {
        self.samples_ok as f64 / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

struct ShardResult {
    samples_ok: usize,
    requests: usize,
    errors: usize,
    unsent: usize,
    latencies: Vec<Duration>,
}

/// Sends every shard of `workload` to `url` (one thread and connection per shard),
/// stopping at `deadline`; `pid` is the server's, for CPU and memory figures.
pub fn run(url: &str, workload: &EncodedWorkload, pid: Option<u32>, time_limit: Duration) -> WriteOutcome {
    let cpu_before = pid.and_then(|p| procfs::cpu_seconds(p).ok());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let deadline = started + time_limit;
    let results: Vec<ShardResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = workload
            .shards
            .iter()
            .map(|shard| {
                let errors = &errors;
                scope.spawn(move || {
                    let agent = crate::http::agent();
                    let mut r = ShardResult {
                        samples_ok: 0,
                        requests: 0,
                        errors: 0,
                        unsent: 0,
                        latencies: Vec::with_capacity(shard.len()),
                    };
                    for (i, req) in shard.iter().enumerate() {
                        if Instant::now() >= deadline {
                            r.unsent = shard.len() - i;
                            break;
                        }
                        let t0 = Instant::now();
                        let resp = crate::http::reply(
                            agent
                                .post(url)
                                .header("Content-Encoding", "snappy")
                                .header("Content-Type", "application/x-protobuf")
                                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                                .send(&req.body[..]),
                        );
                        r.latencies.push(t0.elapsed());
                        r.requests += 1;
                        match resp {
                            Ok(rep) if (200..300).contains(&rep.status) => r.samples_ok += req.samples,
                            other => {
                                r.errors += 1;
                                let msg = match other {
                                    Ok(rep) => format!("HTTP {}: {}", rep.status, rep.body.trim()),
                                    Err(e) => format!("transport: {e}"),
                                };
                                let mut kept = errors.lock().unwrap_or_else(|p| p.into_inner());
                                if kept.len() < KEPT_ERRORS {
                                    kept.push(msg.chars().take(KEPT_ERROR_CHARS).collect());
                                }
                            }
                        }
                    }
                    r
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let wall = started.elapsed();
    let cpu_after = pid.and_then(|p| procfs::cpu_seconds(p).ok());
    let latencies: Vec<Duration> = results.iter().flat_map(|r| r.latencies.iter().copied()).collect();
    WriteOutcome {
        samples_ok: results.iter().map(|r| r.samples_ok).sum(),
        requests: results.iter().map(|r| r.requests).sum(),
        errors: results.iter().map(|r| r.errors).sum(),
        unsent: results.iter().map(|r| r.unsent).sum(),
        first_errors: errors.into_inner().unwrap_or_else(|p| p.into_inner()),
        wall,
        p50: quantile(&latencies, 0.5).unwrap_or_default(),
        p99: quantile(&latencies, 0.99).unwrap_or_default(),
        server_cpu_s: cpu_before.zip(cpu_after).map(|(a, b)| b - a),
        server_peak_rss: pid.and_then(|p| procfs::peak_rss_bytes(p).ok()),
    }
}
