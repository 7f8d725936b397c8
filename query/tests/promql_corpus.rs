//! Runs Prometheus's PromQL test scripts (and our own under `tests/promql/`) on the
//! engine. Fails on any failing eval not listed in `promql-known-failures.txt`, and on
//! any listed eval that now passes, so the list only ever shrinks.
//!
//! `VIGIL_PROMQL_TESTS` overrides the corpus folder; `VIGIL_PROMQL_WRITE_KNOWN=1`
//! rewrites the known-failures list from the current results.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vigil_query::promqltest::{Report, run_file, script_engine_options};

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    files
}

fn run_dir(dir: &Path) -> Report {
    let opts = script_engine_options();
    let mut report = Report::default();
    for f in test_files(dir) {
        report.merge(run_file(&f, &opts));
    }
    report
}

#[test]
fn own_scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let report = run_dir(&dir);
    println!("{report}");
    assert_eq!(report.failures().count(), 0, "{report}");
    assert!(report.passed() > 0);
}

#[test]
fn prometheus_corpus_does_not_regress() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("VIGIL_PROMQL_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("tests/promql-upstream"));
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "PromQL corpus missing at {}", dir.display());
        eprintln!("skipping: no PromQL corpus at {} (set VIGIL_PROMQL_TESTS)", dir.display());
        return;
    }
    let report = run_dir(&dir);
    println!("{report}");
    let known_path = manifest.join("tests/promql-known-failures.txt");
    let failing: BTreeSet<String> = report.failures().map(|o| o.location()).collect();
    if std::env::var_os("VIGIL_PROMQL_WRITE_KNOWN").is_some() {
        let mut text = String::from(
            "# Evals of shared/promql-tests that fail today (file:line); this list may only shrink.\n",
        );
        for f in &failing {
            text.push_str(f);
            text.push('\n');
        }
        std::fs::write(&known_path, text).expect("write known failures");
        return;
    }
    let known: BTreeSet<String> = std::fs::read_to_string(&known_path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let new: Vec<&String> = failing.difference(&known).collect();
    let fixed: Vec<&String> = known.difference(&failing).collect();
    assert!(new.is_empty(), "evals that newly fail: {new:?}\n{report}");
    assert!(fixed.is_empty(), "evals that now pass; remove them from {}: {fixed:?}", known_path.display());
}
