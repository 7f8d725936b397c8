//! BENCHMARKS.md: the machine, versions, exact commands, and one table of figures per
//! server with the ratio Vigil/peer, plus the cross-server result-count check.

use std::fmt::Write as _;
use std::time::Duration;

use crate::compare::ServerRun;
use crate::stats::ms;
use crate::workload::{EncodedWorkload, WorkloadSpec};

/// What the report says about the run beyond the per-server figures.
pub struct ReportInput<'a> {
    /// The workload's knobs.
    pub spec: &'a WorkloadSpec,
    /// The encoded workload's figures.
    pub workload: &'a EncodedWorkload,
    /// Seconds spent generating and encoding (untimed).
    pub generate_s: f64,
    /// The servers in table order; Vigil first when it ran.
    pub runs: &'a [ServerRun],
    /// The command that produced the report.
    pub command: &'a str,
    /// `quick` or `default` or `custom`.
    pub size: &'a str,
    /// Timed runs per query.
    pub repeat: usize,
}

/// One row: a label, a value per server, and whether lower is better.
struct Row {
    label: String,
    values: Vec<Option<f64>>,
    text: Vec<String>,
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The machine: CPU model and count, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib =
        crate::procfs::parse_status_kib(&meminfo, "MemTotal:").map(|k| k as f64 / (1024.0 * 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs ({model}), {} GiB RAM, Linux {}",
        mem_gib.map_or("?".into(), |g| format!("{g:.1}")),
        kernel.trim()
    )
}

fn d_ms(d: Option<Duration>) -> Option<f64> {
    d.map(ms)
}

/// Renders BENCHMARKS.md.
pub fn render(input: &ReportInput<'_>) -> String {
    let runs = input.runs;
    let w = input.workload;
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `vigil-load compare` (see `benches/`). One run on a shared, noisy machine: \
         read the **ratios**, not the absolute figures; run it again before trusting a small \
         difference.\n"
    );
    let _ = writeln!(out, "- Machine: {}", machine());
    for r in runs {
        let _ = writeln!(out, "- {}: {}", r.name, if r.version.is_empty() { "unknown" } else { &r.version });
    }
    let _ = writeln!(out, "- Size: {}", input.size);
    let _ = writeln!(out, "\n## Workload\n");
    let s = input.spec;
    let _ = writeln!(
        out,
        "{} hosts, each a `job=\"node\"` target (CPU, memory, filesystem, network) and a `job=\"api\"` \
         target (requests by method/status/handler, a 10-bucket latency histogram per handler): \
         {} active series, {} distinct series over the span ({} API targets replaced, {:.2}/hour churn, \
         each ending with a stale marker). Scrape interval {}s over {:.1}h ending at the start of the \
         run; seed {}. {} samples in {} remote-write 1.0 requests of up to {} samples \
         ({:.1} MB snappy), encoded in {:.1}s before the timed phase and sent over {} connections \
         (samples sharded by series, time-ordered per connection).\n",
        w.hosts,
        w.series_active,
        w.series_total,
        w.targets_replaced,
        s.churn_per_hour,
        s.interval.as_secs(),
        s.span.as_secs_f64() / 3600.0,
        s.seed,
        w.samples,
        w.shards.iter().map(Vec::len).sum::<usize>(),
        s.samples_per_request,
        w.bytes as f64 / 1e6,
        input.generate_s,
        s.shards,
    );
    let _ = writeln!(out, "## Commands\n\n```sh\n{}\n", input.command);
    for r in runs {
        let _ = writeln!(out, "# {}\n{}", r.name, r.command);
    }
    let _ = writeln!(out, "```\n");

    let mut rows: Vec<Row> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&ServerRun) -> Option<f64>| {
        let values: Vec<Option<f64>> = runs.iter().map(f).collect();
        let text = values.iter().map(|v| v.map_or("n/a".into(), fmt_num)).collect();
        rows.push(Row { label: label.into(), values, text });
    };
    row("Ingest samples/s (higher is better)", &|r| {
        (r.write.samples_ok > 0).then(|| r.write.samples_per_s())
    });
    row("Ingest CPU-seconds per million samples", &|r| {
        r.write.server_cpu_s.filter(|_| r.write.samples_ok > 0).map(|c| c * 1e6 / r.write.samples_ok as f64)
    });
    row("Write request latency p50 (ms)", &|r| (r.write.requests > 0).then(|| ms(r.write.p50)));
    row("Write request latency p99 (ms)", &|r| (r.write.requests > 0).then(|| ms(r.write.p99)));
    row("Failed write requests", &|r| Some(r.write.errors as f64));
    let active = w.series_active.max(1) as f64;
    row("Peak RSS after ingest per active series (bytes)", &|r| {
        r.write.server_peak_rss.map(|b| b as f64 / active)
    });
    row("Peak RSS after ingest (MiB)", &|r| r.write.server_peak_rss.map(|b| b as f64 / 1048576.0));
    row("Peak RSS after queries (MiB)", &|r| r.peak_rss_after_queries.map(|b| b as f64 / 1048576.0));
    let per_sample = |b: Option<u64>, r: &ServerRun| {
        b.filter(|_| r.write.samples_ok > 0).map(|b| b as f64 / r.write.samples_ok as f64)
    };
    row("Disk bytes per sample, persisted (see notes)", &|r| per_sample(r.disk_persisted, r));
    row("Disk bytes per sample, data dir after graceful stop", &|r| per_sample(r.disk_after_stop, r));
    row("Start to ready, empty (ms)", &|r| d_ms(r.first_ready));
    row("Write end to data visible (ms)", &|r| d_ms(r.visible_after));
    row("Restart to ready after graceful stop (ms)", &|r| d_ms(r.restart_ready));
    row("Restart to first query seeing all data after graceful stop (ms)", &|r| d_ms(r.restart_first_query));
    row("Restart to ready after kill -9 (ms)", &|r| d_ms(r.crash_ready));
    row("Restart to first query seeing all data after kill -9 (ms)", &|r| d_ms(r.crash_first_query));
    row("Restart to ready after kill -9, whole WAL replayed (ms; see notes)", &|r| d_ms(r.wal_replay_ready));
    row("Restart to first query seeing all data after kill -9, whole WAL replayed (ms)", &|r| {
        d_ms(r.wal_replay_first_query)
    });
    row("WAL replay: samples per second of restart to ready, whole WAL (higher is better)", &|r| {
        let d = r.wal_replay_ready?;
        (r.write.samples_ok > 0).then(|| r.write.samples_ok as f64 / d.as_secs_f64())
    });
    let names: Vec<String> =
        runs.first().map(|r| r.queries.iter().map(|q| q.name.clone()).collect()).unwrap_or_default();
    for name in &names {
        let find = |r: &ServerRun| r.queries.iter().find(|q| &q.name == name).cloned();
        let values: Vec<Option<f64>> = runs.iter().map(|r| find(r).and_then(|q| d_ms(q.median))).collect();
        let text = runs
            .iter()
            .map(|r| match find(r) {
                Some(q) if q.median.is_some() => {
                    format!(
                        "{} (p90 {})",
                        fmt_num(d_ms(q.median).unwrap_or(0.0)),
                        fmt_num(d_ms(q.p90).unwrap_or(0.0))
                    )
                }
                Some(q) if q.error.is_some() => "error".into(),
                _ => "n/a".into(),
            })
            .collect();
        rows.push(Row { label: format!("Query `{name}` median ms"), values, text });
    }

    let _ = writeln!(out, "## Results\n");
    let vigil = runs.iter().position(|r| r.name == "Vigil");
    let peers: Vec<usize> = (0..runs.len()).filter(|&i| Some(i) != vigil).collect();
    let mut header = String::from("| Figure |");
    let mut rule = String::from("|---|");
    for r in runs {
        let _ = write!(header, " {} |", r.name);
        rule.push_str("---:|");
    }
    if vigil.is_some() {
        for &p in &peers {
            let _ = write!(header, " Vigil/{} |", runs[p].name);
            rule.push_str("---:|");
        }
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for r in &rows {
        let mut line = format!("| {} |", r.label);
        for t in &r.text {
            let _ = write!(line, " {t} |");
        }
        if let Some(v) = vigil {
            for &p in &peers {
                let ratio = match (r.values[v], r.values[p]) {
                    (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
                    _ => "n/a".into(),
                };
                let _ = write!(line, " {ratio} |");
            }
        }
        let _ = writeln!(out, "{line}");
    }

    let _ = writeln!(out, "\n## Result series per query (must agree across servers)\n");
    let mut header = String::from("| Query |");
    let mut rule = String::from("|---|");
    for r in runs {
        let _ = write!(header, " {} |", r.name);
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header} Agree |\n{rule}---|");
    for name in &names {
        let counts: Vec<Option<usize>> = runs
            .iter()
            .map(|r| r.queries.iter().find(|q| &q.name == name).and_then(|q| q.result_count))
            .collect();
        let mut line = format!("| `{name}` |");
        for c in &counts {
            let _ = write!(line, " {} |", c.map_or("error".into(), |c| c.to_string()));
        }
        let _ = writeln!(out, "{line} {} |", agreement(&counts));
    }

    let _ = writeln!(out, "\n## Notes\n");
    let _ = writeln!(
        out,
        "- Ingest CPU is the server's user+system time from `/proc/<pid>/stat` across the write \
         phase; peak RSS is `VmHWM` from `/proc/<pid>/status`; per active series divides by {} series.\n\
         - Query latency: one warm-up, then {} timed runs each; median and p90. VictoriaMetrics runs \
         with `-search.disableCache` so repeats are not served from its result cache.\n\
         - Disk sizes count allocated blocks (as `du`) and divide by the samples accepted.",
        w.series_active, input.repeat
    );
    for r in runs {
        let _ = writeln!(out, "- {} persisted disk: {}.", r.name, r.persist_note);
    }
    let _ = writeln!(
        out,
        "- Restarts: after the persist step each server is killed with `kill -9` and started again \
         (crash recovery), then stopped with SIGTERM and started again (graceful restart). After a \
         crash Vigil loads the newest head snapshot it wrote while running (after each block cut and \
         whenever the WAL since the last one outgrew it) and replays the WAL after it; after a \
         graceful stop, the snapshot the stop wrote. The whole-WAL rows time Vigil once more after \
         a `kill -9` with its head snapshot deleted (a crash before any snapshot was written), so \
         the whole WAL is replayed; for Prometheus they repeat its kill -9 figures, since it always \
         replays its WAL over its memory-mapped head chunks (its `memory-snapshot-on-shutdown` \
         feature flag is off by default and off here), samples per second being the samples \
         written over the wall-clock time from start to ready; VictoriaMetrics has no WAL: it \
         keeps the newest samples in memory for about a second before writing them out, so a \
         `kill -9` can lose them (the persist step's `force_flush` runs before the kill; a problem \
         noted below says when its data was not all visible after the restart)."
    );
    for r in runs {
        for (when, open) in
            [("after kill -9", r.crash_open), ("after kill -9 without a head snapshot", r.wal_replay_open)]
        {
            if let Some(o) = open {
                let _ = writeln!(
                    out,
                    "- {} {when}, from its log: store opened in {} ms with {} samples ({}{} from the WAL \
                     in {} ms: {} samples/s of WAL replay).",
                    r.name,
                    o.duration_ms,
                    o.samples,
                    if o.from_snapshot { "head snapshot loaded, " } else { "" },
                    o.wal_samples,
                    o.wal_replay_ms,
                    fmt_num(o.wal_samples_per_s())
                );
            }
        }
    }
    for r in runs {
        if r.write.errors > 0 || r.write.unsent > 0 {
            let _ = writeln!(
                out,
                "- {}: {} failed and {} unsent write requests; first errors: {}",
                r.name,
                r.write.errors,
                r.write.unsent,
                r.write
                    .first_errors
                    .iter()
                    .map(|e| format!("`{}`", e.replace('`', "'")))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        for q in r.queries.iter().filter(|q| q.error.is_some()) {
            let _ = writeln!(
                out,
                "- {} query `{}` failed: `{}`",
                r.name,
                q.name,
                q.error.as_deref().unwrap_or("").replace('`', "'").replace('\n', " ")
            );
        }
        for p in &r.problems {
            let _ = writeln!(out, "- {}: {}", r.name, p.replace('\n', " "));
        }
        if !r.clean_stop {
            let _ = writeln!(out, "- {} did not stop on SIGTERM in time and was killed.", r.name);
        }
    }
    out
}

/// `yes` when every server that answered gave the same count, `NO` otherwise.
pub fn agreement(counts: &[Option<usize>]) -> &'static str {
    let answered: Vec<usize> = counts.iter().flatten().copied().collect();
    match answered.first() {
        None => "n/a",
        Some(first) if answered.iter().all(|c| c == first) && answered.len() == counts.len() => "yes",
        Some(first) if answered.iter().all(|c| c == first) => "partial",
        Some(_) => "NO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_states() {
        assert_eq!(agreement(&[Some(3), Some(3), Some(3)]), "yes");
        assert_eq!(agreement(&[None, Some(3), Some(3)]), "partial");
        assert_eq!(agreement(&[Some(2), Some(3)]), "NO");
        assert_eq!(agreement(&[None, None]), "n/a");
    }

    #[test]
    fn numbers_keep_three_significant_places() {
        assert_eq!(fmt_num(1234.5), "1234");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(1.2345), "1.23");
        assert_eq!(fmt_num(0.0), "0");
    }
}
