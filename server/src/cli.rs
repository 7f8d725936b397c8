//! Command-line flags, named as Prometheus names them.

use std::path::PathBuf;

use clap::Parser;

/// Default listen address: Prometheus's port, so clients need no change.
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9090";
/// Default data directory, relative to the working directory.
pub const DEFAULT_STORAGE_PATH: &str = "data";

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
}

impl Cli {
    /// The data directory: the flag, else `storage.path` from the config file, else `data`.
    pub fn storage_path(&self, config: &crate::Config) -> PathBuf {
        self.storage_path
            .clone()
            .or_else(|| config.storage.path.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORAGE_PATH))
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
}
