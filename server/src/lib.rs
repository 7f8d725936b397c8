//! The `vigil` server: configuration, command line, the HTTP API and the wiring of
//! storage, query and ingest. The only crate that knows all the others.
//!
//! Public surface: [`router`] (every route, for in-process tests), [`run`] and
//! [`serve_on`] (bind, open the store in the background, serve until shutdown),
//! [`AppState`], [`Config`], [`Cli`], [`shutdown_signal`], the API helpers in
//! [`api`] (parameter parsing, response formatting), and the subcommands
//! [`import_cmd`] (`vigil import`), [`promqltest_cmd`] and [`check`].

pub mod api;
pub mod check;
pub mod cli;
pub mod config;
pub mod import_cmd;
pub mod promqltest_cmd;
pub mod rules_wiring;
mod serve;
pub mod state;
pub mod storage_open;

pub use api::router;
pub use cli::Cli;
pub use config::Config;
pub use serve::{ServeOptions, run, serve_on, shutdown_signal};
pub use state::AppState;
