//! Connects the rule engine to the server: builds the manager and notifier from the
//! configuration, reloads them (`POST /-/reload`, SIGHUP) and renders `/metrics`.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use vigil_query::Engine;
use vigil_rules::notifier::DEFAULT_QUEUE_CAPACITY;
use vigil_rules::{DEFAULT_EVALUATION_INTERVAL_MS, EvalEnv, Manager, Notifier, RuleFilesConfig, RuleMetrics};
use vigil_storage::Storage;

use crate::api::params::parse_prometheus_duration;
use crate::config::Config;
use crate::state::AppState;

/// Prometheus's `--rules.alert.for-outage-tolerance` default (1h).
pub const DEFAULT_FOR_OUTAGE_TOLERANCE: &str = "1h";
/// Prometheus's `--rules.alert.for-grace-period` default (10m).
pub const DEFAULT_FOR_GRACE_PERIOD: &str = "10m";
/// Prometheus's `--rules.alert.resend-delay` default (1m).
pub const DEFAULT_RESEND_DELAY: &str = "1m";

/// Command-line settings of the rule engine.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesOptions {
    /// The configuration file, re-read on reload (None: the config given at start stays).
    pub config_file: Option<PathBuf>,
    /// URL under which Vigil is reachable (`generatorURL`, `$externalURL`).
    pub external_url: String,
    /// `--rules.alert.for-outage-tolerance`.
    pub for_outage_tolerance: String,
    /// `--rules.alert.for-grace-period`.
    pub for_grace_period: String,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: String,
    /// `--alertmanager.notification-queue-capacity`.
    pub queue_capacity: usize,
}

impl Default for RulesOptions {
    fn default() -> Self {
        RulesOptions {
            config_file: None,
            external_url: String::new(),
            for_outage_tolerance: DEFAULT_FOR_OUTAGE_TOLERANCE.into(),
            for_grace_period: DEFAULT_FOR_GRACE_PERIOD.into(),
            resend_delay: DEFAULT_RESEND_DELAY.into(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

impl RulesOptions {
    /// Checks the duration flags, so a typo stops the server at startup.
    pub fn validate(&self) -> anyhow::Result<()> {
        duration("rules.alert.for-outage-tolerance", &self.for_outage_tolerance)?;
        duration("rules.alert.for-grace-period", &self.for_grace_period)?;
        duration("rules.alert.resend-delay", &self.resend_delay)?;
        Ok(())
    }
}

fn duration(flag: &str, v: &str) -> anyhow::Result<i64> {
    parse_prometheus_duration(v).ok_or_else(|| anyhow::anyhow!("--{flag}: not a valid duration: {v:?}"))
}

/// The running rule engine with what a reload needs.
pub struct RulesHandle {
    manager: Manager,
    options: RulesOptions,
    /// The configuration currently applied (replaced on a successful reload).
    config: Mutex<Config>,
    registry: Registry,
}

/// Rule-file settings from a configuration.
fn rule_files(config: &Config, options: &RulesOptions) -> RuleFilesConfig {
    let ms = |v: &Option<String>, default: i64| {
        v.as_deref().and_then(parse_prometheus_duration).unwrap_or(default)
    };
    RuleFilesConfig {
        patterns: config.rule_files.clone(),
        base_dir: options.config_file.as_ref().and_then(|f| f.parent().map(|p| p.to_path_buf())),
        default_interval_ms: ms(&config.global.evaluation_interval, DEFAULT_EVALUATION_INTERVAL_MS),
        default_query_offset_ms: ms(&config.global.rule_query_offset, 0),
    }
}

impl RulesHandle {
    /// Starts the notifier and the rule groups. Rule-file errors are logged and the
    /// server runs without those rules (as Prometheus refuses to start, the caller
    /// may choose to fail instead: the errors are returned alongside).
    pub fn start(
        storage: Arc<dyn Storage>,
        engine: Engine,
        config: &Config,
        options: RulesOptions,
    ) -> anyhow::Result<(Arc<RulesHandle>, Vec<String>)> {
        let metrics = Arc::new(RuleMetrics::default());
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let targets = config.alerting.targets().map_err(anyhow::Error::msg)?;
        let notifier = Arc::new(Notifier::start(
            targets,
            config.global.external_labels.clone(),
            options.queue_capacity,
            metrics.clone(),
        ));
        let env = EvalEnv {
            storage,
            engine,
            external_labels: config.global.external_labels.clone(),
            external_url: options.external_url.clone(),
            resend_delay_ms: duration("rules.alert.resend-delay", &options.resend_delay)?,
            for_outage_tolerance_ms: duration(
                "rules.alert.for-outage-tolerance",
                &options.for_outage_tolerance,
            )?,
            for_grace_period_ms: duration("rules.alert.for-grace-period", &options.for_grace_period)?,
            metrics,
        };
        let manager = Manager::new(env, Some(notifier));
        let errors = match manager.load(&rule_files(config, &options)) {
            Ok(()) => Vec::new(),
            Err(errs) => {
                for e in &errs {
                    tracing::error!(error = %e, "loading rule files failed");
                }
                errs
            }
        };
        let handle = RulesHandle { manager, options, config: Mutex::new(config.clone()), registry };
        Ok((Arc::new(handle), errors))
    }

    /// Re-reads the configuration file and the rule files. On any error nothing
    /// changes and the error text is returned (and logged).
    pub fn reload(&self) -> Result<(), String> {
        let result = self.try_reload();
        match &result {
            Ok(()) => tracing::info!("configuration and rules reloaded"),
            Err(e) => tracing::error!(error = %e, "reload failed; the previous rules keep running"),
        }
        result
    }

    fn try_reload(&self) -> Result<(), String> {
        let config = match &self.options.config_file {
            Some(path) => Config::load(path).map_err(|e| format!("{e:#}"))?,
            None => self.config.lock().clone(),
        };
        let targets = config.alerting.targets()?;
        self.manager.load(&rule_files(&config, &self.options)).map_err(|errs| errs.join("; "))?;
        if let Some(n) = self.manager.notifier() {
            n.set_targets(targets);
        }
        *self.config.lock() = config;
        Ok(())
    }

    /// The manager (for the rules and alerts API).
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Appends the rule and notifier metrics to `out` in the OpenMetrics text format,
    /// without the closing `# EOF` (the `/metrics` handler adds it after every section).
    pub fn render_metrics(&self, out: &mut String) {
        if let Err(e) = prometheus_client::encoding::text::encode_registry(out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
    }

    /// Stops evaluation and drains the notifier.
    pub fn stop(&self) {
        self.manager.stop();
    }
}

/// Refuses to start on rule files with errors, as Prometheus does (a reload with bad
/// files keeps the old rules instead).
pub fn check_at_startup(config: &Config, options: &RulesOptions) -> anyhow::Result<()> {
    let cfg = vigil_rules::RuleFilesConfig {
        patterns: config.rule_files.clone(),
        base_dir: options.config_file.as_ref().and_then(|f| f.parent().map(|p| p.to_path_buf())),
        ..Default::default()
    };
    vigil_rules::manager::load_specs(&cfg)
        .map_err(|errs| anyhow::anyhow!("loading rule files: {}", errs.join("; ")))?;
    Ok(())
}

/// Starts rule evaluation and the notifier against the open store.
pub async fn start_rules(
    state: &AppState,
    storage: Arc<dyn Storage>,
    config: &Config,
    options: &RulesOptions,
) -> Option<Arc<RulesHandle>> {
    let (engine, config, rules_opts) = (state.engine().clone(), config.clone(), options.clone());
    let started =
        tokio::task::spawn_blocking(move || RulesHandle::start(storage, engine, &config, rules_opts)).await;
    match started {
        Ok(Ok((handle, _errors))) => {
            state.set_rules(handle.clone());
            Some(handle)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "starting the rule engine failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "starting the rule engine panicked");
            None
        }
    }
}

/// Reloads configuration and rules on every SIGHUP, as Prometheus does.
pub async fn reload_on_sighup(state: AppState) {
    #[cfg(unix)]
    {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received, reloading");
            if let Some(rules) = state.rules().cloned() {
                let _ = tokio::task::spawn_blocking(move || rules.reload()).await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// The external URL when none is given: Prometheus's `http://<hostname>:<port>/`,
/// with loopback when listening on every interface.
pub fn default_external_url(listen_address: &str) -> String {
    let port = listen_address.rsplit(':').next().unwrap_or("9090");
    let host = listen_address.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    let host = if host.is_empty() || host == "0.0.0.0" || host == "[::]" { "localhost" } else { host };
    format!("http://{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_url_defaults_from_the_listen_address() {
        assert_eq!(default_external_url("0.0.0.0:9090"), "http://localhost:9090");
        assert_eq!(default_external_url("127.0.0.1:1234"), "http://127.0.0.1:1234");
    }
}
