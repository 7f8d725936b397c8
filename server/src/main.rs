//! The `vigil` binary: parses flags, sets up logging and runs the server.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use vigil_server::cli::{CheckCommand, Command};
use vigil_server::{Cli, Config, ServeOptions, import_cmd, promqltest_cmd, run, shutdown_signal};

/// Ingest allocates and frees many small label strings per request; with glibc's
/// allocator that was about 40% of ingest CPU at 100k series (`perf`). With mimalloc
/// ingest took about half the CPU there; built without transparent huge pages
/// (`no_thp`), its peak RSS was within 3% of glibc's (with them, 20% above).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Check { what: CheckCommand::Rules { files } }) = &cli.command {
        return vigil_server::check::check_rules(files, &mut std::io::stdout(), &mut std::io::stderr());
    }
    if let Some(Command::Promqltest { files }) = &cli.command {
        return match promqltest_cmd::run(files, &mut std::io::stdout().lock()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("vigil promqltest: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Import { from_openmetrics, storage_path }) = &cli.command {
        return import(&cli, from_openmetrics, storage_path);
    }
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

/// `vigil import`: storage options from `--config.file` and the `--storage.*` flags.
fn import(cli: &Cli, file: &std::path::Path, dir: &std::path::Path) -> ExitCode {
    let opts = (|| -> anyhow::Result<vigil_storage::DbOptions> {
        let mut config = match &cli.config_file {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        cli.apply_storage_flags(&mut config)?;
        config.storage.db_options()
    })();
    match opts.and_then(|o| import_cmd::run(file, dir, o, &mut std::io::stdout().lock())) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil import: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config_file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    cli.apply_storage_flags(&mut config)?;
    let storage_path = cli.storage_path(&config);
    tracing::info!(version = vigil_server::api::VERSION, storage_path = %storage_path.display(), "starting vigil");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let engine = cli.engine_options();
    let rules = cli.rules_options();
    let enable_admin_api = cli.enable_admin_api;
    let opts = ServeOptions {
        listen_address: cli.listen_address,
        storage_path,
        config,
        engine,
        rules,
        enable_admin_api,
    };
    runtime.block_on(run(opts, shutdown_signal()))
}
