//! Command-line flags, named as Prometheus names them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use vigil_query::EngineOptions;

use crate::api::params::parse_prometheus_duration;

/// Default listen address: Prometheus's port, so clients need no change.
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9090";
/// Default data directory, relative to the working directory.
pub const DEFAULT_STORAGE_PATH: &str = "data";
/// Prometheus's default `--query.timeout`.
pub const DEFAULT_QUERY_TIMEOUT: &str = "2m";
/// Prometheus's default `--query.max-samples`.
pub const DEFAULT_QUERY_MAX_SAMPLES: usize = 50_000_000;
/// Prometheus's default `--query.lookback-delta`.
pub const DEFAULT_LOOKBACK_DELTA: &str = "5m";
/// `--enable-feature` value that turns on experimental PromQL functions.
pub const FEATURE_EXPERIMENTAL_FUNCTIONS: &str = "promql-experimental-functions";
/// `--enable-feature` value that keeps `__name__` until the end of evaluation.
pub const FEATURE_DELAYED_NAME_REMOVAL: &str = "promql-delayed-name-removal";

/// `vigil`: a Prometheus-compatible time-series store.
#[derive(Debug, Clone, Parser)]
#[command(name = "vigil", version, about = "Vigil: a Prometheus-compatible time-series store")]
pub struct Cli {
    /// Address to listen on for the API, remote write and the web endpoints.
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,

    /// Directory for the data (overrides `storage.path` in the config file) [default: data].
    #[arg(long = "storage.path", value_name = "DIR")]
    pub storage_path: Option<PathBuf>,

    /// YAML configuration file (Prometheus's `global` section plus Vigil's `storage`).
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// URL under which Vigil is reachable (alert `generatorURL`s, `$externalURL`)
    /// [default: http://<listen host>:<port>].
    #[arg(long = "web.external-url", value_name = "URL")]
    pub external_url: Option<String>,

    /// Longest outage after which `for` state of alerts is not restored.
    #[arg(long = "rules.alert.for-outage-tolerance", value_name = "DURATION", default_value = crate::rules_wiring::DEFAULT_FOR_OUTAGE_TOLERANCE)]
    pub for_outage_tolerance: String,

    /// Least time between a restart and a restored alert firing.
    #[arg(long = "rules.alert.for-grace-period", value_name = "DURATION", default_value = crate::rules_wiring::DEFAULT_FOR_GRACE_PERIOD)]
    pub for_grace_period: String,

    /// Least time between two sends of the same alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", value_name = "DURATION", default_value = crate::rules_wiring::DEFAULT_RESEND_DELAY)]
    pub resend_delay: String,

    /// Alerts queued for Alertmanager before the oldest are dropped.
    #[arg(long = "alertmanager.notification-queue-capacity", value_name = "N", default_value_t = vigil_rules::notifier::DEFAULT_QUEUE_CAPACITY)]
    pub notification_queue_capacity: usize,

    /// Longest a query may run before it is aborted.
    #[arg(long = "query.timeout", value_name = "DURATION", default_value = DEFAULT_QUERY_TIMEOUT, value_parser = parse_flag_duration)]
    pub query_timeout: Duration,

    /// Most samples a single query may load into memory.
    #[arg(long = "query.max-samples", value_name = "N", default_value_t = DEFAULT_QUERY_MAX_SAMPLES)]
    pub query_max_samples: usize,

    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", value_name = "DURATION", default_value = DEFAULT_LOOKBACK_DELTA, value_parser = parse_flag_duration)]
    pub query_lookback_delta: Duration,

    /// Feature flags, comma-separated or repeated: `promql-experimental-functions`,
    /// `promql-delayed-name-removal` (others are accepted and ignored, as Prometheus
    /// warns and goes on).
    #[arg(long = "enable-feature", value_name = "NAME", value_delimiter = ',')]
    pub enable_feature: Vec<String>,

    /// Time span of a block cut from the head (overrides `storage.block_range`) [default: 2h].
    #[arg(long = "storage.block-range", value_name = "DURATION")]
    pub block_range: Option<String>,

    /// How long blocks are kept (overrides `storage.retention.raw`; 0 = forever) [default: 90d].
    #[arg(long = "storage.retention.raw", value_name = "DURATION")]
    pub retention_raw: Option<String>,

    /// Most bytes of blocks kept, e.g. `512MB`, `10GB` (overrides `storage.retention.size`;
    /// 0 = no cap) [default: 0].
    #[arg(long = "storage.retention.size", value_name = "SIZE")]
    pub retention_size: Option<String>,

    /// How far behind a series' newest sample a late sample is still accepted (overrides
    /// `storage.out_of_order_window`; 0 = refused, as Prometheus does) [default: 0].
    #[arg(long = "storage.out-of-order-window", value_name = "DURATION")]
    pub out_of_order_window: Option<String>,

    /// Enables the admin endpoints `/api/v1/admin/tsdb/*` (delete, clean tombstones, snapshot).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,

    /// A subcommand instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of `vigil`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Validates configuration files, as `promtool check` does.
    Check {
        /// What to check.
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Runs Prometheus's PromQL test scripts against Vigil's engine; prints every
    /// failing eval and `N passed, M failed, K skipped`; exits 1 on failures.
    Promqltest {
        /// Script files (`.test`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Backfills history into blocks from OpenMetrics text (as `promtool tsdb
    /// dump-openmetrics` writes it); the server must not be running on the directory.
    /// Prints what was imported and skipped; exits 1 on a malformed file.
    Import {
        /// The OpenMetrics file.
        #[arg(long = "from-openmetrics", value_name = "FILE")]
        from_openmetrics: PathBuf,
        /// The data directory to import into.
        #[arg(long = "storage.path", value_name = "DIR")]
        storage_path: PathBuf,
    },
}

/// What `vigil check` validates.
#[derive(Debug, Clone, Subcommand)]
pub enum CheckCommand {
    /// Rule files, like `promtool check rules`: a parse error names file, line and
    /// column, a bad expression or template names the rule; exits 1 on any error.
    Rules {
        /// Rule files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Parses a Prometheus duration flag (`2m`, `1h30m`, `0`).
fn parse_flag_duration(s: &str) -> Result<Duration, String> {
    match parse_prometheus_duration(s) {
        Some(ms) if ms >= 0 => Ok(Duration::from_millis(ms.unsigned_abs())),
        _ => Err(format!("not a valid duration: {s:?}")),
    }
}

impl Cli {
    /// The data directory: the flag, else `storage.path` from the config file, else `data`.
    pub fn storage_path(&self, config: &crate::Config) -> PathBuf {
        self.storage_path
            .clone()
            .or_else(|| config.storage.path.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORAGE_PATH))
    }

    /// Overrides the config file's storage keys with the `--storage.*` flags given, and
    /// checks the result.
    pub fn apply_storage_flags(&self, config: &mut crate::Config) -> anyhow::Result<()> {
        let storage = &mut config.storage;
        if let Some(v) = &self.block_range {
            storage.block_range = v.clone();
        }
        if let Some(v) = &self.retention_raw {
            storage.retention.raw = v.clone();
        }
        if let Some(v) = &self.retention_size {
            storage.retention.size = v.clone();
        }
        if let Some(v) = &self.out_of_order_window {
            storage.out_of_order_window = v.clone();
        }
        storage.db_options()?;
        Ok(())
    }

    /// Whether `--enable-feature` names `feature`.
    pub fn feature_enabled(&self, feature: &str) -> bool {
        self.enable_feature.iter().any(|f| f.trim() == feature)
    }

    /// The engine settings the query flags ask for.
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            lookback_delta: self.query_lookback_delta,
            timeout: self.query_timeout,
            max_samples: self.query_max_samples,
            experimental_functions: self.feature_enabled(FEATURE_EXPERIMENTAL_FUNCTIONS),
            delayed_name_removal: self.feature_enabled(FEATURE_DELAYED_NAME_REMOVAL),
            ..EngineOptions::default()
        }
    }
}

impl Cli {
    /// The rule engine's settings from the flags.
    pub fn rules_options(&self) -> crate::rules_wiring::RulesOptions {
        crate::rules_wiring::RulesOptions {
            config_file: self.config_file.clone(),
            external_url: self.external_url.clone().unwrap_or_default().trim_end_matches('/').to_string(),
            for_outage_tolerance: self.for_outage_tolerance.clone(),
            for_grace_period: self.for_grace_period.clone(),
            resend_delay: self.resend_delay.clone(),
            queue_capacity: self.notification_queue_capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_path_flag_beats_config_beats_default() {
        let config = crate::Config::parse("storage:\n  path: /from/config\n").expect("config");
        let bare = Cli::try_parse_from(["vigil"]).expect("parse");
        assert_eq!(bare.storage_path(&crate::Config::default()), PathBuf::from("data"));
        assert_eq!(bare.storage_path(&config), PathBuf::from("/from/config"));
        let flagged = Cli::try_parse_from(["vigil", "--storage.path=/from/flag"]).expect("parse");
        assert_eq!(flagged.storage_path(&config), PathBuf::from("/from/flag"));
    }

    #[test]
    fn no_arguments_give_prometheus_defaults() {
        let cli = Cli::try_parse_from(["vigil"]).expect("parse");
        assert_eq!(cli.listen_address, DEFAULT_LISTEN_ADDRESS);
        assert_eq!(cli.storage_path, None);
        assert_eq!(cli.config_file, None);
    }

    #[test]
    fn prometheus_style_flags_parse() {
        let cli = Cli::try_parse_from([
            "vigil",
            "--web.listen-address=127.0.0.1:0",
            "--storage.path",
            "/tmp/x",
            "--config.file=vigil.yml",
        ])
        .expect("parse");
        assert_eq!(cli.listen_address, "127.0.0.1:0");
        assert_eq!(cli.storage_path, Some(PathBuf::from("/tmp/x")));
        assert_eq!(cli.config_file, Some(PathBuf::from("vigil.yml")));
    }

    #[test]
    fn engine_flags_default_to_prometheus_and_override() {
        let bare = Cli::try_parse_from(["vigil"]).expect("parse").engine_options();
        assert_eq!(bare.timeout, Duration::from_secs(120));
        assert_eq!(bare.max_samples, 50_000_000);
        assert_eq!(bare.lookback_delta, Duration::from_secs(300));
        assert!(!bare.experimental_functions && !bare.delayed_name_removal);
        let cli = Cli::try_parse_from([
            "vigil",
            "--query.timeout=30s",
            "--query.max-samples=1000",
            "--query.lookback-delta=1m30s",
            "--enable-feature=promql-experimental-functions,exemplar-storage",
            "--enable-feature",
            "promql-delayed-name-removal",
        ])
        .expect("parse");
        let o = cli.engine_options();
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(o.max_samples, 1000);
        assert_eq!(o.lookback_delta, Duration::from_secs(90));
        assert!(o.experimental_functions && o.delayed_name_removal);
        assert!(Cli::try_parse_from(["vigil", "--query.timeout=soon"]).is_err());
    }

    #[test]
    fn storage_flags_override_the_config_file() {
        let mut config =
            crate::Config::parse("storage:\n  block_range: 1h\n  retention:\n    raw: 10d\n    size: 1GB\n")
                .expect("config");
        let bare = Cli::try_parse_from(["vigil"]).expect("parse");
        bare.apply_storage_flags(&mut config).expect("no flags");
        assert_eq!(config.storage.db_options().expect("options").block_range, 3_600_000);
        assert!(!bare.enable_admin_api);
        let cli = Cli::try_parse_from([
            "vigil",
            "--storage.block-range=2m",
            "--storage.retention.raw=1d",
            "--storage.retention.size=512MB",
            "--storage.out-of-order-window=10m",
            "--web.enable-admin-api",
        ])
        .expect("parse");
        cli.apply_storage_flags(&mut config).expect("valid flags");
        let o = config.storage.db_options().expect("options");
        assert_eq!((o.block_range, o.retention_raw, o.retention_size), (120_000, 86_400_000, 512 << 20));
        assert_eq!(o.out_of_order_window, 600_000);
        assert!(cli.enable_admin_api);
        let bad = Cli::try_parse_from(["vigil", "--storage.retention.size=lots"]).expect("parse");
        assert!(bad.apply_storage_flags(&mut config).is_err());
    }

    #[test]
    fn promqltest_subcommand_takes_files() {
        let cli = Cli::try_parse_from(["vigil", "promqltest", "a.test", "b.test"]).expect("parse");
        let Some(Command::Promqltest { files }) = cli.command else { panic!("no subcommand") };
        assert_eq!(files, vec![PathBuf::from("a.test"), PathBuf::from("b.test")]);
        assert!(Cli::try_parse_from(["vigil", "promqltest"]).is_err());
    }

    #[test]
    fn import_subcommand_takes_a_file_and_a_data_dir() {
        let cli =
            Cli::try_parse_from(["vigil", "import", "--from-openmetrics", "d.om", "--storage.path", "/x"])
                .expect("parse");
        let Some(Command::Import { from_openmetrics, storage_path }) = cli.command else {
            panic!("no import")
        };
        assert_eq!((from_openmetrics, storage_path), (PathBuf::from("d.om"), PathBuf::from("/x")));
        assert!(Cli::try_parse_from(["vigil", "import", "--storage.path", "/x"]).is_err());
    }
}
