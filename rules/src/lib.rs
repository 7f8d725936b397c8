//! Recording and alerting rules for Vigil: rule files in Prometheus's format, group
//! evaluation, the alert state machine, templates and the Alertmanager notifier.

pub mod alerting;
pub mod duration;
pub mod file;
pub mod group;
pub mod metrics;
pub mod notifier;
pub mod template;
pub mod timefmt;
