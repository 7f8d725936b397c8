//! The `vigil` binary: parses flags, sets up logging and runs the server.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use vigil_server::{Cli, Config, ServeOptions, run, shutdown_signal};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match serve(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "vigil stopped with an error");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let config = match &cli.config_file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let storage_path = cli.storage_path(&config);
    tracing::info!(version = vigil_server::api::VERSION, storage_path = %storage_path.display(), "starting vigil");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let opts = ServeOptions { listen_address: cli.listen_address, storage_path, config };
    runtime.block_on(run(opts, shutdown_signal()))
}
