//! `vigil check rules FILE...`: validates rule files like `promtool check rules`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Checks each rule file, printing `SUCCESS: N rules found` or its errors; failure
/// when any file has an error.
pub fn check_rules(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let mut failed = false;
    for f in files {
        let _ = writeln!(out, "Checking {}", f.display());
        match vigil_rules::load_file(f) {
            Ok(groups) => {
                let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                let _ = writeln!(out, "  SUCCESS: {rules} rules found\n");
            }
            Err(errors) => {
                failed = true;
                let _ = writeln!(err, "  FAILED:");
                for e in errors {
                    let _ = writeln!(err, "{e}");
                }
                let _ = writeln!(err);
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_success_and_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.yml");
        std::fs::write(&good, "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n")
            .expect("write");
        let bad = dir.path().join("bad.yml");
        std::fs::write(&bad, "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n")
            .expect("write");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(check_rules(std::slice::from_ref(&good), &mut out, &mut err), ExitCode::SUCCESS);
        assert!(String::from_utf8_lossy(&out).contains("SUCCESS: 1 rules found"));
        assert_eq!(check_rules(&[good, bad.clone()], &mut out, &mut err), ExitCode::FAILURE);
        let err = String::from_utf8_lossy(&err).into_owned();
        assert!(
            err.contains(&format!(
                "{}:4:9: group \"g\", rule 1, \"A\": could not parse expression",
                bad.display()
            )),
            "{err}"
        );
    }
}
