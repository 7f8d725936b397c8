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

use crate::api::params::parse_prometheus_duration;
use crate::state::{ApiSettings, DEFAULT_MAX_WRITE_BODY_BYTES, DEFAULT_MAX_WRITE_DECOMPRESSED_BYTES};

/// Default WAL sync interval: fsync on every commit, so an acknowledged write survives
/// a power loss; raise it to trade that for throughput.
const DEFAULT_WAL_SYNC_INTERVAL: &str = "0s";

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Prometheus's `global` section.
    pub global: GlobalConfig,
    /// Vigil's storage settings.
    pub storage: StorageConfig,
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
    /// Default rule evaluation interval (for rules, once Vigil evaluates them).
    pub evaluation_interval: Option<String>,
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
        }
    }
}

impl StorageConfig {
    /// The WAL sync interval in ms (validated at load).
    pub fn wal_sync_interval_ms(&self) -> i64 {
        parse_prometheus_duration(&self.wal_sync_interval).unwrap_or(0)
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
        }
    }
}

impl Config {
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
        ];
        for (key, value) in durations {
            if let Some(v) = value.filter(|v| parse_prometheus_duration(v).is_none()) {
                bail!("{key}: not a valid duration string: {v:?}");
            }
        }
        if let Some(name) = self.global.external_labels.keys().find(|n| n.is_empty()) {
            bail!("global.external_labels: invalid label name {name:?}");
        }
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
    fn bad_durations_are_errors() {
        let err = Config::parse("storage:\n  wal_sync_interval: soon\n").expect_err("bad duration");
        assert!(format!("{err:#}").contains("storage.wal_sync_interval"), "{err:#}");
    }
}
