//! The YAML configuration file: Prometheus's shapes where Prometheus has them
//! (`global`), plus Vigil's own `storage` section. Unknown keys are errors that name
//! the file and line, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use vigil_ingest::remote_write::{
    DEFAULT_MAX_LABEL_NAME_LENGTH, DEFAULT_MAX_LABEL_NAMES_PER_SERIES, DEFAULT_MAX_LABEL_VALUE_LENGTH, Limits,
};

use vigil_ingest::exemplars::DEFAULT_MAX_EXEMPLARS;
use vigil_ingest::otlp::{OtlpOptions, TranslationStrategy};

use vigil_storage::DbOptions;

use crate::api::params::parse_prometheus_duration;
use crate::state::{ApiSettings, DEFAULT_MAX_WRITE_BODY_BYTES, DEFAULT_MAX_WRITE_DECOMPRESSED_BYTES};

/// Default WAL sync interval: fsync on every commit, so an acknowledged write survives
/// a power loss; raise it to trade that for throughput.
const DEFAULT_WAL_SYNC_INTERVAL: &str = "0s";
/// Default block range: Prometheus's two-hour head blocks.
pub const DEFAULT_BLOCK_RANGE: &str = "2h";
/// Default raw retention (90 days: longer than Prometheus's 15d, as DESIGN.md asks).
pub const DEFAULT_RETENTION_RAW: &str = "90d";
/// Default size cap on blocks: none.
pub const DEFAULT_RETENTION_SIZE: &str = "0";
/// Default maintenance interval: often enough that the head never grows much past 1.5
/// block ranges even with small ranges, rare enough that an idle pass costs nothing
/// noticeable (Prometheus also checks for compactable head data each minute).
pub const DEFAULT_MAINTENANCE_INTERVAL: &str = "1m";
/// Default out-of-order window: late samples are refused, as in Prometheus.
pub const DEFAULT_OUT_OF_ORDER_WINDOW: &str = "0s";

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Prometheus's `global` section.
    pub global: GlobalConfig,
    /// Vigil's storage settings.
    pub storage: StorageConfig,
    /// Globs of rule files (relative ones resolve against the config file's directory).
    pub rule_files: Vec<String>,
    /// Prometheus's `alerting` section: where alerts are sent.
    pub alerting: vigil_rules::AlertingConfig,
    /// How remote write is received (Prometheus names these as feature flags).
    pub remote_write_receiver: RemoteWriteReceiverConfig,
    /// Prometheus's `otlp` section: how OTLP metrics are translated.
    pub otlp: OtlpConfig,
}

/// Prometheus's `otlp` section, with its key names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Resource attributes copied as labels onto every series.
    pub promote_resource_attributes: Vec<String>,
    /// Copy all resource attributes but `ignore_resource_attributes`.
    pub promote_all_resource_attributes: bool,
    /// Resource attributes not promoted by `promote_all_resource_attributes`.
    pub ignore_resource_attributes: Vec<String>,
    /// `UnderscoreEscapingWithSuffixes` (default), `UnderscoreEscapingWithoutSuffixes`,
    /// `NoUTF8EscapingWithSuffixes` or `NoTranslation`.
    pub translation_strategy: Option<String>,
    /// Keep `service.name`, `service.namespace` and `service.instance.id` on `target_info`.
    pub keep_identifying_resource_attributes: bool,
    /// Native histograms with custom buckets instead of classic ones (not supported yet).
    pub convert_histograms_to_nhcb: bool,
    /// Add `otel_scope_name`, `otel_scope_version`, ... labels.
    pub promote_scope_metadata: bool,
    /// Accumulate delta sums and histograms (Prometheus's `otlp-deltatocumulative`
    /// feature flag); delta points are refused otherwise.
    pub convert_delta_to_cumulative: bool,
}

impl OtlpConfig {
    /// The translation options (checked at load, so the strategy parses).
    pub fn options(&self, limits: Limits) -> OtlpOptions {
        OtlpOptions {
            translation_strategy: self.strategy().unwrap_or_default(),
            promote_resource_attributes: self.promote_resource_attributes.clone(),
            promote_all_resource_attributes: self.promote_all_resource_attributes,
            ignore_resource_attributes: self.ignore_resource_attributes.clone(),
            keep_identifying_resource_attributes: self.keep_identifying_resource_attributes,
            promote_scope_metadata: self.promote_scope_metadata,
            convert_delta_to_cumulative: self.convert_delta_to_cumulative,
            limits,
        }
    }

    fn strategy(&self) -> Result<TranslationStrategy, String> {
        self.translation_strategy.as_deref().map(str::parse).unwrap_or(Ok(TranslationStrategy::default()))
    }

    fn check(&self) -> anyhow::Result<()> {
        if let Err(e) = self.strategy() {
            bail!("{e}");
        }
        if self.promote_all_resource_attributes && !self.promote_resource_attributes.is_empty() {
            bail!(
                "otlp: promote_all_resource_attributes and promote_resource_attributes are mutually exclusive"
            );
        }
        if !self.promote_all_resource_attributes && !self.ignore_resource_attributes.is_empty() {
            bail!("otlp: ignore_resource_attributes is only valid with promote_all_resource_attributes");
        }
        if self.convert_histograms_to_nhcb {
            bail!("otlp.convert_histograms_to_nhcb: native histograms are not supported by Vigil yet");
        }
        for list in [&self.promote_resource_attributes, &self.ignore_resource_attributes] {
            if let Some(empty) = list.iter().find(|a| a.trim().is_empty()) {
                bail!("otlp: empty resource attribute name {empty:?}");
            }
        }
        Ok(())
    }
}

/// Vigil's `remote_write_receiver` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteReceiverConfig {
    /// Append a zero sample at each remote write 2.0 start timestamp, as Prometheus's
    /// `--enable-feature=created-timestamp-zero-ingestion` does.
    pub created_timestamp_zero_ingestion: bool,
}

/// Prometheus's `storage.exemplars` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    /// Most exemplars kept in memory, shared by all series (0 disables them).
    pub max_exemplars: usize,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig { max_exemplars: DEFAULT_MAX_EXEMPLARS }
    }
}

/// Prometheus's `global` section (the parts Vigil reads).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Labels added to alerts and data leaving Vigil (not to stored series).
    pub external_labels: BTreeMap<String, String>,
    /// Default scrape interval (for scraping, once Vigil scrapes).
    pub scrape_interval: Option<String>,
    /// Default scrape timeout (for scraping, once Vigil scrapes).
    pub scrape_timeout: Option<String>,
    /// Default rule evaluation interval (1m when unset).
    pub evaluation_interval: Option<String>,
    /// Default offset rule groups evaluate at (`now - offset`; 0 when unset).
    pub rule_query_offset: Option<String>,
}

/// Vigil's `storage` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory; `--storage.path` overrides it.
    pub path: Option<PathBuf>,
    /// How often the WAL is fsynced, as a Prometheus duration; `0s` = on every commit.
    pub wal_sync_interval: String,
    /// Most labels per series accepted on ingest (0 = no limit).
    pub max_label_names_per_series: usize,
    /// Longest label name in bytes accepted on ingest (0 = no limit).
    pub max_label_name_length: usize,
    /// Longest label value in bytes accepted on ingest (0 = no limit).
    pub max_label_value_length: usize,
    /// Largest remote-write request body, compressed.
    pub max_write_body_bytes: usize,
    /// Largest remote-write request body, decompressed.
    pub max_write_decompressed_bytes: usize,
    /// In-memory exemplar storage, as Prometheus's `storage.exemplars`.
    pub exemplars: ExemplarsConfig,
    /// Time span of a block cut from the head; `--storage.block-range` overrides it.
    pub block_range: String,
    /// How long and how much data is kept.
    pub retention: RetentionConfig,
    /// How much older than a series' newest sample a late sample may be (0 = refused).
    pub out_of_order_window: String,
    /// How often block cuts, retention and compaction run (default 1m; tests shorten it).
    pub maintenance_interval: String,
}

/// Vigil's `storage.retention` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Blocks older than this before the newest sample are dropped (`0` = forever);
    /// `--storage.retention.raw` overrides it.
    pub raw: String,
    /// Cap on the bytes of blocks, in Prometheus's size syntax (`512MB`, `10GB`; `0` =
    /// no cap); `--storage.retention.size` overrides it.
    pub size: String,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { raw: DEFAULT_RETENTION_RAW.into(), size: DEFAULT_RETENTION_SIZE.into() }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: None,
            wal_sync_interval: DEFAULT_WAL_SYNC_INTERVAL.into(),
            max_label_names_per_series: DEFAULT_MAX_LABEL_NAMES_PER_SERIES,
            max_label_name_length: DEFAULT_MAX_LABEL_NAME_LENGTH,
            max_label_value_length: DEFAULT_MAX_LABEL_VALUE_LENGTH,
            max_write_body_bytes: DEFAULT_MAX_WRITE_BODY_BYTES,
            max_write_decompressed_bytes: DEFAULT_MAX_WRITE_DECOMPRESSED_BYTES,
            exemplars: ExemplarsConfig::default(),
            block_range: DEFAULT_BLOCK_RANGE.into(),
            retention: RetentionConfig::default(),
            out_of_order_window: DEFAULT_OUT_OF_ORDER_WINDOW.into(),
            maintenance_interval: DEFAULT_MAINTENANCE_INTERVAL.into(),
        }
    }
}

impl StorageConfig {
    /// The WAL sync interval in ms (validated at load).
    pub fn wal_sync_interval_ms(&self) -> i64 {
        parse_prometheus_duration(&self.wal_sync_interval).unwrap_or(0)
    }

    /// The block store's options from this section (validated at load, see [`Config::check`]).
    pub fn db_options(&self) -> anyhow::Result<DbOptions> {
        let duration = |key: &str, v: &str| {
            parse_prometheus_duration(v).with_context(|| format!("{key}: not a valid duration string: {v:?}"))
        };
        let block_range = duration("storage.block_range", &self.block_range)?;
        if block_range <= 0 {
            bail!("storage.block_range must be positive, got {:?}", self.block_range);
        }
        let retention_size = parse_size_bytes(&self.retention.size)
            .map_err(|e| anyhow::anyhow!("storage.retention.size: {e}"))?;
        Ok(DbOptions {
            block_range,
            retention_raw: duration("storage.retention.raw", &self.retention.raw)?,
            retention_size,
            out_of_order_window: duration("storage.out_of_order_window", &self.out_of_order_window)?,
            ..DbOptions::default()
        })
    }

    /// The maintenance interval (validated at load to be positive).
    pub fn maintenance_interval(&self) -> std::time::Duration {
        let ms = parse_prometheus_duration(&self.maintenance_interval).unwrap_or(0);
        std::time::Duration::from_millis(ms.max(1).unsigned_abs())
    }

    /// The HTTP layer's settings derived from this section.
    pub fn api_settings(&self) -> ApiSettings {
        ApiSettings {
            limits: Limits {
                max_label_names_per_series: self.max_label_names_per_series,
                max_label_name_length: self.max_label_name_length,
                max_label_value_length: self.max_label_value_length,
            },
            max_write_body_bytes: self.max_write_body_bytes,
            max_write_decompressed_bytes: self.max_write_decompressed_bytes,
            max_exemplars: self.exemplars.max_exemplars,
            created_timestamp_zero_ingestion: false,
            otlp: OtlpOptions::default(),
            enable_admin_api: false,
        }
    }
}

/// Units of Prometheus's size syntax (`units.Base2Bytes`: a kilobyte is 1024 bytes,
/// `KB` and `KiB` alike), longest spelling first so `KiB` is not read as `K`.
const SIZE_UNITS: [(&str, u64); 13] = [
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("EiB", 1 << 60),
    ("KB", 1 << 10),
    ("MB", 1 << 20),
    ("GB", 1 << 30),
    ("TB", 1 << 40),
    ("PB", 1 << 50),
    ("EB", 1 << 60),
    ("B", 1),
];

/// Parses a byte size as Prometheus's `--storage.tsdb.retention.size` does: `0`, or
/// one or more `<integer><unit>` terms (`512MB`, `1GB512MB`), units in base 2.
pub fn parse_size_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("not a valid size: {text:?} (use e.g. 512MB or 10GB)");
    if text == "0" {
        return Ok(0);
    }
    let mut rest = text;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, scale) = SIZE_UNITS.iter().find(|(u, _)| rest.starts_with(u)).ok_or_else(bad)?;
        rest = &rest[unit.len()..];
        total = n.checked_mul(*scale).and_then(|b| total.checked_add(b)).ok_or_else(bad)?;
    }
    Ok(total)
}

impl Config {
    /// The HTTP layer's settings from every section that shapes them.
    pub fn api_settings(&self) -> ApiSettings {
        let base = self.storage.api_settings();
        ApiSettings {
            created_timestamp_zero_ingestion: self.remote_write_receiver.created_timestamp_zero_ingestion,
            otlp: self.otlp.options(base.limits),
            ..base
        }
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Config::parse_named(&text, &path.display().to_string())
    }

    /// Parses and checks configuration text; an empty document is the default config.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse_named(text, "<config>")
    }

    /// Like [`Config::parse`], naming the source as `name` in errors (`name:line:column: …`).
    fn parse_named(text: &str, name: &str) -> anyhow::Result<Config> {
        let has_content = text.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && l != "---"
        });
        if !has_content {
            return Ok(Config::default());
        }
        let config: Config = serde_saphyr::from_str(text).map_err(|e| match e.location() {
            Some(at) => anyhow::anyhow!("{name}:{}:{}: {}", at.line(), at.column(), e.without_snippet()),
            None => anyhow::anyhow!("{name}: {}", e.without_snippet()),
        })?;
        config.check().with_context(|| name.to_string())?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        let durations = [
            ("storage.wal_sync_interval", Some(&self.storage.wal_sync_interval)),
            ("global.scrape_interval", self.global.scrape_interval.as_ref()),
            ("global.scrape_timeout", self.global.scrape_timeout.as_ref()),
            ("global.evaluation_interval", self.global.evaluation_interval.as_ref()),
            ("global.rule_query_offset", self.global.rule_query_offset.as_ref()),
        ];
        for (key, value) in durations {
            if let Some(v) = value.filter(|v| parse_prometheus_duration(v).is_none()) {
                bail!("{key}: not a valid duration string: {v:?}");
            }
        }
        if let Some(name) = self.global.external_labels.keys().find(|n| n.is_empty()) {
            bail!("global.external_labels: invalid label name {name:?}");
        }
        self.storage.db_options()?;
        if parse_prometheus_duration(&self.storage.maintenance_interval).is_none_or(|ms| ms <= 0) {
            bail!(
                "storage.maintenance_interval must be a positive duration, got {:?}",
                self.storage.maintenance_interval
            );
        }
        self.otlp.check()?;
        self.alerting.targets().map_err(anyhow::Error::msg)?;
        if self.storage.max_write_body_bytes == 0 || self.storage.max_write_decompressed_bytes == 0 {
            bail!("storage.max_write_body_bytes and storage.max_write_decompressed_bytes must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_comment_only_files_are_the_default() {
        assert_eq!(Config::parse("").expect("empty"), Config::default());
        assert_eq!(Config::parse("# nothing\n---\n").expect("comments"), Config::default());
    }

    #[test]
    fn reads_prometheus_global_and_vigil_storage() {
        let cfg = Config::parse(
            "global:\n  scrape_interval: 15s\n  external_labels:\n    region: eu\nstorage:\n  wal_sync_interval: 1s\n  max_label_names_per_series: 10\n",
        )
        .expect("valid");
        assert_eq!(cfg.global.external_labels.get("region").map(String::as_str), Some("eu"));
        assert_eq!(cfg.storage.wal_sync_interval_ms(), 1000);
        assert_eq!(cfg.storage.api_settings().limits.max_label_names_per_series, 10);
        assert_eq!(cfg.storage.max_label_name_length, DEFAULT_MAX_LABEL_NAME_LENGTH);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = Config::parse("global:\n  external_labels: {}\nstorage:\n  wal_sync: 1s\n")
            .expect_err("unknown key");
        let msg = format!("{err:#}");
        assert!(msg.starts_with("<config>:4:3: "), "{msg}");
        assert!(msg.contains("unknown field `wal_sync`"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.yml");
        std::fs::write(&path, "global:\n  bogus: 1\n").expect("write");
        let msg = format!("{:#}", Config::load(&path).expect_err("unknown key"));
        assert!(msg.starts_with(&format!("{}:2:3: ", path.display())), "{msg}");
        std::fs::write(&path, "").expect("write");
        assert_eq!(Config::load(&path).expect("empty file"), Config::default());
    }

    #[test]
    fn reads_rule_files_and_alerting() {
        let cfg = Config::parse(
            "global:\n  evaluation_interval: 30s\nrule_files: ['rules/*.yml']\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:9093']\n",
        )
        .expect("valid");
        assert_eq!(cfg.rule_files, vec!["rules/*.yml".to_string()]);
        assert_eq!(cfg.alerting.targets().expect("targets")[0].url, "http://127.0.0.1:9093/api/v2/alerts");
        let err = Config::parse("alerting:\n  alertmanagers:\n    - api_version: v1\n").expect_err("v1");
        assert!(format!("{err:#}").contains("api_version"), "{err:#}");
    }

    #[test]
    fn reads_exemplar_and_receiver_settings() {
        let cfg = Config::parse(
            "storage:\n  exemplars:\n    max_exemplars: 7\nremote_write_receiver:\n  created_timestamp_zero_ingestion: true\n",
        )
        .expect("valid");
        let settings = cfg.api_settings();
        assert_eq!(settings.max_exemplars, 7);
        assert!(settings.created_timestamp_zero_ingestion);
        assert_eq!(Config::default().api_settings().max_exemplars, DEFAULT_MAX_EXEMPLARS);
    }

    #[test]
    fn reads_prometheus_otlp_section() {
        let cfg = Config::parse(
            "otlp:\n  translation_strategy: NoUTF8EscapingWithSuffixes\n  promote_resource_attributes: [k8s.namespace.name]\n  keep_identifying_resource_attributes: true\n  promote_scope_metadata: true\n  convert_delta_to_cumulative: true\n",
        )
        .expect("valid");
        let o = cfg.api_settings().otlp;
        assert_eq!(o.translation_strategy, TranslationStrategy::NoUtf8EscapingWithSuffixes);
        assert_eq!(o.promote_resource_attributes, vec!["k8s.namespace.name".to_string()]);
        assert!(
            o.keep_identifying_resource_attributes
                && o.promote_scope_metadata
                && o.convert_delta_to_cumulative
        );
        assert_eq!(
            Config::default().api_settings().otlp.translation_strategy,
            TranslationStrategy::UnderscoreEscapingWithSuffixes
        );
    }

    #[test]
    fn bad_otlp_settings_are_errors() {
        for (text, want) in [
            ("otlp:\n  translation_strategy: Bogus\n", "unknown otlp.translation_strategy"),
            (
                "otlp:\n  promote_all_resource_attributes: true\n  promote_resource_attributes: [a]\n",
                "mutually exclusive",
            ),
            ("otlp:\n  ignore_resource_attributes: [a]\n", "only valid with"),
            ("otlp:\n  convert_histograms_to_nhcb: true\n", "not supported"),
        ] {
            let err = format!("{:#}", Config::parse(text).expect_err(text));
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn storage_keys_map_to_db_options() {
        let d = Config::default().storage.db_options().expect("defaults");
        assert_eq!(d.block_range, 2 * 3_600_000);
        assert_eq!(d.retention_raw, 90 * 86_400_000);
        assert_eq!((d.retention_size, d.out_of_order_window), (0, 0));
        let cfg = Config::parse(
            "storage:\n  block_range: 30m\n  out_of_order_window: 10m\n  retention:\n    raw: 30d\n    size: 10GB\n",
        )
        .expect("valid");
        let o = cfg.storage.db_options().expect("options");
        assert_eq!(o.block_range, 30 * 60_000);
        assert_eq!(o.retention_raw, 30 * 86_400_000);
        assert_eq!(o.retention_size, 10 << 30);
        assert_eq!(o.out_of_order_window, 10 * 60_000);
        assert_eq!(cfg.storage.maintenance_interval(), std::time::Duration::from_secs(60));
        let fast = Config::parse("storage:\n  maintenance_interval: 200ms\n").expect("valid");
        assert_eq!(fast.storage.maintenance_interval(), std::time::Duration::from_millis(200));
        for (text, key) in [
            ("storage:\n  block_range: 0s\n", "storage.block_range"),
            ("storage:\n  block_range: soon\n", "storage.block_range"),
            ("storage:\n  retention:\n    size: 10 gigs\n", "storage.retention.size"),
            ("storage:\n  retention:\n    raw: ever\n", "storage.retention.raw"),
            ("storage:\n  maintenance_interval: 0s\n", "storage.maintenance_interval"),
        ] {
            let err = format!("{:#}", Config::parse(text).expect_err(text));
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn sizes_parse_as_prometheus_base2_bytes() {
        assert_eq!(parse_size_bytes("0"), Ok(0));
        assert_eq!(parse_size_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_size_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size_bytes("1GB512MB"), Ok((1 << 30) + (512 << 20)));
        assert_eq!(parse_size_bytes("100B"), Ok(100));
        for bad in ["", "10", "MB", "1.5GB", "10XB", "-1GB", "99999999999EB"] {
            assert!(parse_size_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_durations_are_errors() {
        let err = Config::parse("storage:\n  wal_sync_interval: soon\n").expect_err("bad duration");
        assert!(format!("{err:#}").contains("storage.wal_sync_interval"), "{err:#}");
    }
}
