//! The `--quick` comparison end to end, so CI keeps the harness from rotting: the real
//! `vigil` binary and whichever peers `.ci/peers.sh` installed. A missing peer is
//! skipped with a message, or fails the test when `CI` is set.

use std::path::PathBuf;

use vigil_bench::compare::Size;
use vigil_bench::queries::{DEFAULT_QUERIES, parse_query_set};
use vigil_bench::report::agreement;
use vigil_bench::run::{CompareOptions, compare};
use vigil_bench::server::ServerKind;
use vigil_bench::workload::default_end_ms;

/// The peer's binary; a missing one skips the test with a message (fails under `CI`).
fn peer(kind: ServerKind, binary: &str) -> Option<PathBuf> {
    debug_assert_ne!(kind, ServerKind::Vigil);
    vigil_tests::peer_binary(binary)
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
            (ServerKind::Vigil, Some(vigil_tests::vigil_binary().to_path_buf())),
            (ServerKind::Prometheus, peer(ServerKind::Prometheus, "prometheus")),
            (ServerKind::VictoriaMetrics, peer(ServerKind::VictoriaMetrics, "victoria-metrics")),
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
                Some(e) => panic!("{} query {} failed: {e}", run.name, q.name),
                None => assert!(q.median.is_some() && q.result_count.is_some(), "{} {}", run.name, q.name),
            }
        }
        assert!(run.problems.is_empty(), "{}: {:?}", run.name, run.problems);
        assert!(run.disk_persisted.is_some_and(|b| b > 0), "{} persisted data", run.name);
        assert!(run.restart_first_query.is_some(), "{} serves its data after a restart", run.name);
    }
    for (i, q) in opts.queries.iter().enumerate() {
        let counts: Vec<Option<usize>> = result.runs.iter().map(|r| r.queries[i].result_count).collect();
        assert_ne!(agreement(&counts), "NO", "{}: result series differ across servers: {counts:?}", q.name);
    }
}
