//! A runner for Prometheus's PromQL test scripts (`load`, `clear`, `eval`, the
//! series notation), as described in `shared/promql-tests/README.md`.
//!
//! Each script runs against a fresh [`vigil_storage::memory::MemStorage`] and the
//! [`crate::Engine`]; the [`Report`] lists every eval with its outcome. Evals that
//! need features Vigil lacks (native histograms, start timestamps, type-and-unit
//! labels) are counted as skipped with the reason, never as passed.

mod compare;
mod notation;
mod runner;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::engine::EngineOptions;

pub(crate) use notation::parse_duration as parse_duration_ms;
pub use runner::run_script;

/// Most samples a query may load in the scripts (Prometheus's test setting).
const SCRIPT_MAX_SAMPLES: usize = 10_000;

/// The engine settings Prometheus runs its test scripts with.
pub fn script_engine_options() -> EngineOptions {
    EngineOptions {
        lookback_delta: Duration::from_secs(300),
        max_samples: SCRIPT_MAX_SAMPLES,
        default_subquery_step: Duration::from_secs(60),
        experimental_functions: true,
        delayed_name_removal: true,
        ..EngineOptions::default()
    }
}

/// Runs one script file; an unreadable file is reported as one failure.
pub fn run_file(path: &Path, opts: &EngineOptions) -> Report {
    let name =
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    match std::fs::read_to_string(path) {
        Ok(text) => run_script(&name, &text, opts),
        Err(e) => {
            let mut r = Report::default();
            r.outcomes.push(Outcome {
                file: name,
                line: 0,
                query: String::new(),
                status: Status::Failed { expected: "a readable file".into(), got: e.to_string() },
            });
            r
        }
    }
}

/// What happened to one eval (or to a script line that could not be run).
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The answer matched.
    Passed,
    /// The answer did not match, or the script line was invalid.
    Failed {
        /// What the script expected.
        expected: String,
        /// What the engine answered.
        got: String,
    },
    /// Not run because it needs a feature Vigil does not have yet.
    Skipped(String),
}

/// One eval's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Script file name.
    pub file: String,
    /// 1-based line of the eval header.
    pub line: usize,
    /// The query.
    pub query: String,
    /// The result.
    pub status: Status,
}

impl Outcome {
    /// `file:line`, as the known-failures list writes it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Outcomes of one or more scripts.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every eval in file order.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Adds another report's outcomes.
    pub fn merge(&mut self, other: Report) {
        self.outcomes.extend(other.outcomes);
    }

    /// Number of passed evals.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status == Status::Passed).count()
    }

    /// The failed evals.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| matches!(o.status, Status::Failed { .. }))
    }

    /// Number of skipped evals.
    pub fn skipped(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o.status, Status::Skipped(_))).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in self.failures() {
            if let Status::Failed { expected, got } = &o.status {
                writeln!(f, "FAIL {}: {}", o.location(), o.query)?;
                writeln!(f, "  expected: {expected}")?;
                writeln!(f, "  got:      {got}")?;
            }
        }
        let mut reasons: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for o in &self.outcomes {
            if let Status::Skipped(r) = &o.status {
                *reasons.entry(r.as_str()).or_default() += 1;
            }
        }
        for (r, n) in reasons {
            writeln!(f, "skipped {n}: {r}")?;
        }
        write!(f, "{} passed, {} failed, {} skipped", self.passed(), self.failures().count(), self.skipped())
    }
}
