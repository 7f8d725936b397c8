//! Recording and alerting rules for Vigil: rule files in Prometheus's format, group
//! evaluation, the alert state machine, templates and the Alertmanager notifier.

pub mod alerting;
pub mod duration;
pub mod file;
pub mod group;
pub mod manager;
pub mod metrics;
pub mod notifier;
pub mod template;
pub mod timefmt;

pub use file::{GroupSpec, RuleKind, RuleSpec, load_file, parse_file};
pub use group::{EvalEnv, Group, Health, Rule};
pub use manager::{DEFAULT_EVALUATION_INTERVAL_MS, Manager, RuleFilesConfig};
pub use metrics::RuleMetrics;
pub use notifier::{AlertingConfig, Notifier};
