//! The `compare` entry point shared by the `vigil-load` binary and the quick test:
//! generate once, run each server in turn, render BENCHMARKS.md.

use std::path::PathBuf;
use std::time::Instant;

use crate::compare::{Comparison, Limits, ServerRun};
use crate::queries::QuerySpec;
use crate::report::{ReportInput, render};
use crate::server::ServerKind;
use crate::workload::{WorkloadSpec, generate};

/// Everything `compare` needs.
pub struct CompareOptions {
    /// The workload.
    pub spec: WorkloadSpec,
    /// Name of the size (`quick`, `default`, or `custom`).
    pub size: String,
    /// Timed runs per query.
    pub repeat: usize,
    /// Phase budgets.
    pub limits: Limits,
    /// The servers to run, in order, with their binaries (`None`: not installed).
    pub servers: Vec<(ServerKind, Option<PathBuf>)>,
    /// The query set.
    pub queries: Vec<QuerySpec>,
    /// The command line to quote in the report.
    pub command: String,
}

/// What a comparison produced.
pub struct CompareResult {
    /// BENCHMARKS.md text.
    pub report: String,
    /// Per-server figures.
    pub runs: Vec<ServerRun>,
    /// Servers skipped because their binary is missing.
    pub skipped: Vec<String>,
    /// Samples generated per server.
    pub samples: usize,
}

/// Runs the comparison; `log` gets progress lines.
pub fn compare(opts: &CompareOptions, log: &mut dyn FnMut(&str)) -> anyhow::Result<CompareResult> {
    let t0 = Instant::now();
    let workload = generate(&opts.spec)?;
    let generate_s = t0.elapsed().as_secs_f64();
    log(&format!(
        "generated {} samples of {} series in {} requests ({:.1} MB) in {generate_s:.1}s",
        workload.samples,
        workload.series_total,
        workload.shards.iter().map(Vec::len).sum::<usize>(),
        workload.bytes as f64 / 1e6
    ));
    let work = crate::compare::temp_work_dir()?;
    let cmp = Comparison {
        workload: &workload,
        queries: &opts.queries,
        repeat: opts.repeat,
        limits: opts.limits,
        work_dir: work.path(),
    };
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for (kind, bin) in &opts.servers {
        let Some(bin) = bin else {
            log(&format!("{}: binary not found, skipped", kind.name()));
            skipped.push(kind.name().to_string());
            continue;
        };
        log(&format!("{}: running {}", kind.name(), bin.display()));
        let started = Instant::now();
        let run = cmp.run_server(*kind, bin);
        log(&format!(
            "{}: done in {:.1}s: {:.0} samples/s, {} write errors, {} problems",
            kind.name(),
            started.elapsed().as_secs_f64(),
            run.write.samples_per_s(),
            run.write.errors,
            run.problems.len()
        ));
        for p in &run.problems {
            log(&format!("{}: {p}", kind.name()));
        }
        runs.push(run);
    }
    let report = render(&ReportInput {
        spec: &opts.spec,
        workload: &workload,
        generate_s,
        runs: &runs,
        command: &opts.command,
        size: &opts.size,
        repeat: opts.repeat,
    });
    Ok(CompareResult { report, runs, skipped, samples: workload.samples })
}
