//! The server's life: bind first, open the store on a blocking thread while already
//! answering (503 until ready), sync the WAL periodically, and on shutdown stop
//! taking requests, then close the store.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use vigil_query::{Engine, EngineOptions};

use crate::api::router;
use crate::config::Config;
use crate::rules_wiring::{RulesHandle, RulesOptions, default_external_url};
use crate::state::AppState;
use crate::storage_open::{self, OpenedStore};

/// What [`run`] needs: where to listen, where the data lives and the configuration.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Listen address, e.g. `0.0.0.0:9090`.
    pub listen_address: String,
    /// Data directory.
    pub storage_path: PathBuf,
    /// The loaded configuration.
    pub config: Config,
    /// Query engine settings (from the `--query.*` and `--enable-feature` flags).
    pub engine: EngineOptions,
    /// Rule engine flags.
    pub rules: RulesOptions,
    /// Serve `/api/v1/admin/tsdb/*` (`--web.enable-admin-api`).
    pub enable_admin_api: bool,
}

/// Binds `opts.listen_address` and serves until `shutdown` completes.
pub async fn run(
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::rules_wiring::check_at_startup(&opts.config, &opts.rules)?;
    let listener = TcpListener::bind(&opts.listen_address)
        .await
        .with_context(|| format!("binding {}", opts.listen_address))?;
    let engine = Engine::new(opts.engine.clone());
    serve_on(listener, opts, engine, shutdown).await
}

/// Serves on an already bound listener with `engine`, until `shutdown` completes or the
/// store fails to open.
pub async fn serve_on(
    listener: TcpListener,
    opts: ServeOptions,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut opts = opts;
    let settings =
        crate::state::ApiSettings { enable_admin_api: opts.enable_admin_api, ..opts.config.api_settings() };
    let state = AppState::new(engine, settings);
    let addr = listener.local_addr().context("reading the listen address")?;
    tracing::info!(address = %addr, "listening");
    if opts.rules.external_url.is_empty() {
        opts.rules.external_url = default_external_url(&addr.to_string());
    }
    let hup = tokio::spawn(crate::rules_wiring::reload_on_sighup(state.clone()));

    let open_failed = Arc::new(Notify::new());
    let opener = tokio::spawn(open_store(state.clone(), opts.clone(), open_failed.clone()));

    let stop = async move {
        tokio::select! {
            _ = shutdown => tracing::info!("shutdown requested"),
            _ = open_failed.notified() => tracing::error!("shutting down: the store could not be opened"),
        }
    };
    axum::serve(listener, router(state)).with_graceful_shutdown(stop).await.context("serving HTTP")?;
    hup.abort();

    // Opening runs on a blocking thread that cannot be interrupted: wait for it, stop
    // the sync loop (letting a sync in flight finish), then close.
    let running = opener.await.context("store opener panicked")??;
    if let Some((task, stop_sync)) = running.sync_task {
        stop_sync.notify_one();
        let _ = task.await;
    }
    if let Some(rules) = running.rules {
        // Stop evaluating (and send queued alerts) before the store goes away.
        tokio::task::spawn_blocking(move || rules.stop())
            .await
            .context("stopping the rule engine panicked")?;
    }
    let started = Instant::now();
    let store = running.store;
    tokio::task::spawn_blocking(move || store.close()).await.context("closing the store panicked")??;
    tracing::info!(took = ?started.elapsed(), "store closed, shutdown complete");
    Ok(())
}

/// The open store and its WAL sync task with the switch that stops it.
struct RunningStore {
    store: Arc<OpenedStore>,
    sync_task: Option<(JoinHandle<()>, Arc<Notify>)>,
    rules: Option<Arc<RulesHandle>>,
}

/// Opens the store, flips the server to ready and starts the periodic WAL sync.
async fn open_store(
    state: AppState,
    opts: ServeOptions,
    failed: Arc<Notify>,
) -> anyhow::Result<RunningStore> {
    let started = Instant::now();
    let path = opts.storage_path.clone();
    let storage_cfg = opts.config.storage.clone();
    let opened = tokio::task::spawn_blocking(move || storage_open::open(&path, &storage_cfg))
        .await
        .context("store opener panicked")
        .and_then(|r| r);
    let opened = match opened {
        Ok(o) => Arc::new(o),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), path = %opts.storage_path.display(), "opening the store failed");
            failed.notify_one();
            return Err(e);
        }
    };
    tracing::info!(
        path = %opts.storage_path.display(),
        replayed_samples = opened.replayed_samples,
        took = ?started.elapsed(),
        "store open, WAL replayed; ready"
    );
    state.set_db(opened.db());
    state.set_ready(opened.storage());
    let rules = crate::rules_wiring::start_rules(&state, opened.storage(), &opts.config, &opts.rules).await;
    let interval_ms = opts.config.storage.wal_sync_interval_ms();
    let sync_task = (interval_ms > 0).then(|| {
        let stop = Arc::new(Notify::new());
        let every = Duration::from_millis(interval_ms as u64);
        (tokio::spawn(sync_loop(opened.clone(), every, stop.clone())), stop)
    });
    Ok(RunningStore { store: opened, sync_task, rules })
}

/// Calls [`OpenedStore::sync`] every `every` until `stop` is notified.
async fn sync_loop(store: Arc<OpenedStore>, every: Duration, stop: Arc<Notify>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.notified() => return,
        }
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "WAL sync failed"),
            Err(e) => tracing::error!(error = %e, "WAL sync panicked"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n");
        tokio::task::spawn_blocking(move || {
            let mut conn = std::net::TcpStream::connect(addr).expect("connect");
            conn.write_all(req.as_bytes()).expect("write");
            let mut out = String::new();
            conn.read_to_string(&mut out).expect("read");
            out
        })
        .await
        .expect("join")
    }

    #[tokio::test]
    async fn serves_becomes_ready_and_shuts_down_cleanly() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = ServeOptions {
            listen_address: addr.to_string(),
            storage_path: dir.path().to_path_buf(),
            config: Config::parse("storage:\n  wal_sync_interval: 10ms\n").expect("config"),
            engine: EngineOptions::default(),
            rules: RulesOptions::default(),
            enable_admin_api: false,
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(listener, opts, Engine::default(), async {
            let _ = stop_rx.await;
        }));
        let mut ready = String::new();
        for _ in 0..100 {
            ready = http_get(addr, "/-/ready").await;
            if ready.starts_with("HTTP/1.1 200") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
        assert!(http_get(addr, "/api/v1/labels").await.ends_with(r#"{"status":"success","data":[]}"#));
        // Let the WAL sync loop run a few times before stopping it.
        tokio::time::sleep(Duration::from_millis(30)).await;
        stop_tx.send(()).expect("server still running");
        server.await.expect("join").expect("clean shutdown");
    }
}
