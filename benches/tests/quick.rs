//! The `--quick` comparison end to end, so CI keeps the harness from rotting: the real
//! `vigil` binary and whichever peers `.ci/peers.sh` installed. A missing peer is
//! skipped with a message, or fails the test when `CI` is set.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use vigil_bench::compare::Size;
use vigil_bench::queries::{DEFAULT_QUERIES, parse_query_set};
use vigil_bench::report::agreement;
use vigil_bench::run::{CompareOptions, compare};
use vigil_bench::server::{ServerKind, peer_binary, peers_bin_dir};
use vigil_bench::workload::default_end_ms;

/// The `vigil` binary: `$VIGIL_BIN`, or a debug build made here with cargo.
fn vigil_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VIGIL_BIN") {
        return PathBuf::from(p);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "-p", "vigil-server", "--bin", "vigil", "--message-format=json-render-diagnostics"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build for the vigil binary");
    assert!(out.status.success(), "cargo build of vigil failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|j| j.get("executable").and_then(|e| e.as_str()).map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == "vigil"))
        .expect("cargo reported the vigil executable")
}

fn peer(kind: ServerKind) -> Option<PathBuf> {
    let dir = peers_bin_dir();
    let found = peer_binary(kind, &dir);
    if found.is_none() {
        let msg =
            format!("peer {} not found in {}; install it with `.ci/peers.sh`", kind.name(), dir.display());
        assert!(std::env::var_os("CI").is_none(), "{msg} (CI is set, so a missing peer is a failure)");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// Vigil may answer a query with a clear "not implemented" error while its engine is
/// being built; any other error, or a different result count, is a failure.
fn vigil_may_refuse(error: &str) -> bool {
    error.contains("not implemented")
}

#[test]
fn quick_comparison_runs_end_to_end_and_servers_agree() {
    let size = Size::Quick;
    let opts = CompareOptions {
        spec: size.spec(default_end_ms()),
        size: size.name().into(),
        repeat: 1,
        limits: size.limits(),
        servers: vec![
            (ServerKind::Vigil, Some(vigil_binary())),
            (ServerKind::Prometheus, peer(ServerKind::Prometheus)),
            (ServerKind::VictoriaMetrics, peer(ServerKind::VictoriaMetrics)),
        ],
        queries: parse_query_set(DEFAULT_QUERIES).unwrap(),
        command: "cargo test -p vigil-bench --test quick".into(),
    };
    let result = compare(&opts, &mut |l| eprintln!("vigil-load: {l}")).expect("comparison runs");
    eprintln!("{}", result.report);
    assert!(result.report.contains("| Figure | Vigil |"), "report has the results table");

    for run in &result.runs {
        assert_eq!(run.write.errors + run.write.unsent, 0, "{}: {:?}", run.name, run.write.first_errors);
        assert_eq!(run.write.samples_ok, result.samples, "{} accepted every sample", run.name);
        assert!(
            run.write.server_cpu_s.is_some() && run.write.server_peak_rss.is_some(),
            "{}: /proc figures",
            run.name
        );
        assert!(run.restart_ready.is_some(), "{} restarted", run.name);
        for q in &run.queries {
            match &q.error {
                Some(e) if run.name == "Vigil" && vigil_may_refuse(e) => {
                    eprintln!("Vigil refuses {}: {e}", q.name)
                }
                Some(e) => panic!("{} query {} failed: {e}", run.name, q.name),
                None => assert!(q.median.is_some() && q.result_count.is_some(), "{} {}", run.name, q.name),
            }
        }
        if run.name != "Vigil" {
            assert!(run.problems.is_empty(), "{}: {:?}", run.name, run.problems);
            assert!(run.disk_persisted.is_some_and(|b| b > 0), "{} persisted data", run.name);
            assert!(run.restart_first_query.is_some(), "{} serves its data after a restart", run.name);
        }
    }
    for (i, q) in opts.queries.iter().enumerate() {
        let counts: Vec<Option<usize>> = result.runs.iter().map(|r| r.queries[i].result_count).collect();
        assert_ne!(agreement(&counts), "NO", "{}: result series differ across servers: {counts:?}", q.name);
    }
}
