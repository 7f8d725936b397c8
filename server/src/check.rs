//! `vigil check rules FILE...`: validates rule files like `promtool check rules`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Runs `vigil check <what> ARGS...`; `args` excludes the program name and `check`.
pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match args.split_first() {
        Some((what, files)) if what == "rules" && !files.is_empty() => check_rules(files, out, err),
        _ => {
            let _ = writeln!(err, "usage: vigil check rules FILE...");
            ExitCode::from(2)
        }
    }
}

fn check_rules(files: &[String], out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let mut failed = false;
    for f in files {
        let _ = writeln!(out, "Checking {f}");
        match vigil_rules::load_file(Path::new(f)) {
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
        let args = vec!["rules".to_string(), good.display().to_string()];
        assert_eq!(main(&args, &mut out, &mut err), ExitCode::SUCCESS);
        assert!(String::from_utf8_lossy(&out).contains("SUCCESS: 1 rules found"));
        let args = vec!["rules".to_string(), good.display().to_string(), bad.display().to_string()];
        assert_eq!(main(&args, &mut out, &mut err), ExitCode::FAILURE);
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
