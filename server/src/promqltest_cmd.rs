//! `vigil promqltest FILE...`: runs PromQL test scripts with the settings Prometheus
//! runs its own scripts with, and reports like `promtool`'s PromQL tests do.

use std::io::Write;
use std::path::PathBuf;

use vigil_query::promqltest::{Report, run_file, script_engine_options};

/// Runs every file, writes the failures and the `N passed, M failed, K skipped`
/// line to `out`, and returns whether no eval failed.
pub fn run(files: &[PathBuf], out: &mut dyn Write) -> std::io::Result<bool> {
    let opts = script_engine_options();
    let mut report = Report::default();
    for f in files {
        report.merge(run_file(f, &opts));
    }
    writeln!(out, "{report}")?;
    Ok(report.failures().count() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_passes_failures_and_the_summary_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.test");
        std::fs::write(&good, "load 1m\n  x 1 2 3\n\neval instant at 2m x\n  x 3\n").expect("write");
        let bad = dir.path().join("bad.test");
        std::fs::write(&bad, "load 1m\n  x 1 2 3\n\neval instant at 2m x\n  x 4\n").expect("write");

        let mut out = Vec::new();
        assert!(run(std::slice::from_ref(&good), &mut out).expect("run"));
        assert!(String::from_utf8_lossy(&out).ends_with("1 passed, 0 failed, 0 skipped\n"));

        let mut out = Vec::new();
        assert!(!run(&[good, bad], &mut out).expect("run"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("FAIL bad.test:4: x"), "{text}");
        assert!(text.ends_with("1 passed, 1 failed, 0 skipped\n"), "{text}");
    }
}
