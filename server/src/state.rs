//! What every handler shares: the store (once it is open), the query engine and the
//! settings the routes need.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use vigil_ingest::exemplars::{DEFAULT_MAX_EXEMPLARS, ExemplarStore};
use vigil_ingest::otlp::{DeltaState, OtlpOptions};
use vigil_ingest::remote_write::Limits;
use vigil_query::Engine;
use vigil_storage::{Db, Storage};

use crate::api::response::ApiError;
use crate::rules_wiring::RulesHandle;

/// Default largest remote-write body accepted (compressed): Prometheus senders send
/// at most a few MB (2,000 samples per request by default), so this leaves ample room.
pub const DEFAULT_MAX_WRITE_BODY_BYTES: usize = 32 << 20;
/// Default largest decompressed remote-write body: snappy rarely compresses metrics
/// more than 4-5x, so four times the body limit.
pub const DEFAULT_MAX_WRITE_DECOMPRESSED_BYTES: usize = 128 << 20;

/// Most OTLP requests decoded and written at once; more get 429 with `Retry-After`,
/// so a burst of exporters queues at the senders instead of in Vigil's memory.
pub const MAX_CONCURRENT_OTLP_REQUESTS: usize = 16;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Per-series label limits applied on remote write.
    pub limits: Limits,
    /// Largest remote-write body, compressed (413 beyond).
    pub max_write_body_bytes: usize,
    /// Largest remote-write body once decompressed (413 beyond).
    pub max_write_decompressed_bytes: usize,
    /// Most exemplars kept in memory (0 = do not keep exemplars).
    pub max_exemplars: usize,
    /// Append a zero sample at remote write 2.0 start timestamps.
    pub created_timestamp_zero_ingestion: bool,
    /// How OTLP is translated.
    pub otlp: OtlpOptions,
    /// Serve the admin endpoints (`--web.enable-admin-api`).
    pub enable_admin_api: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            limits: Limits::default(),
            max_write_body_bytes: DEFAULT_MAX_WRITE_BODY_BYTES,
            max_write_decompressed_bytes: DEFAULT_MAX_WRITE_DECOMPRESSED_BYTES,
            max_exemplars: DEFAULT_MAX_EXEMPLARS,
            created_timestamp_zero_ingestion: false,
            otlp: OtlpOptions::default(),
            enable_admin_api: false,
        }
    }
}

/// Shared state of the server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: OnceLock<Arc<dyn Storage>>,
    /// The same store as the block database, for the admin and TSDB status APIs; unset
    /// when the state was built around another `Storage` (tests).
    db: OnceLock<Arc<Db>>,
    rules: OnceLock<Arc<RulesHandle>>,
    engine: Engine,
    settings: ApiSettings,
    exemplars: Arc<ExemplarStore>,
    deltas: Arc<DeltaState>,
    ingest_permits: Arc<Semaphore>,
}

impl AppState {
    /// State whose store is not open yet: the API answers 503 until [`AppState::set_ready`].
    pub fn new(engine: Engine, settings: ApiSettings) -> Self {
        let exemplars = Arc::new(ExemplarStore::new(settings.max_exemplars));
        let deltas = Arc::new(DeltaState::new());
        let ingest_permits = Arc::new(Semaphore::new(MAX_CONCURRENT_OTLP_REQUESTS));
        let inner = Inner {
            store: OnceLock::new(),
            db: OnceLock::new(),
            rules: OnceLock::new(),
            engine,
            settings,
            exemplars,
            deltas,
            ingest_permits,
        };
        AppState { inner: Arc::new(inner) }
    }

    /// State with an open store, ready at once (for tests and embedding).
    pub fn with_store(store: Arc<dyn Storage>, engine: Engine, settings: ApiSettings) -> Self {
        let state = AppState::new(engine, settings);
        state.set_ready(store);
        state
    }

    /// Hands over the opened store (WAL replayed); from now on `/-/ready` answers 200.
    /// A second call is ignored: the first store stays.
    pub fn set_ready(&self, store: Arc<dyn Storage>) {
        let _ = self.inner.store.set(store);
    }

    /// Hands over the block database behind the store (before [`AppState::set_ready`]).
    pub fn set_db(&self, db: Arc<Db>) {
        let _ = self.inner.db.set(db);
    }

    /// The block database, or `unavailable` while opening (or when the store is not one).
    pub fn db(&self) -> Result<Arc<Db>, ApiError> {
        self.inner.db.get().cloned().ok_or_else(ApiError::unavailable)
    }

    /// True once the store is open.
    pub fn is_ready(&self) -> bool {
        self.inner.store.get().is_some()
    }

    /// The store, or the `unavailable` error while it is still opening.
    pub fn storage(&self) -> Result<Arc<dyn Storage>, ApiError> {
        self.inner.store.get().cloned().ok_or_else(ApiError::unavailable)
    }

    /// Hands over the running rule engine (once the store is open).
    pub fn set_rules(&self, rules: Arc<RulesHandle>) {
        let _ = self.inner.rules.set(rules);
    }

    /// The rule engine, once started.
    pub fn rules(&self) -> Option<&Arc<RulesHandle>> {
        self.inner.rules.get()
    }

    /// The query engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The in-memory exemplar store.
    pub fn exemplars(&self) -> &Arc<ExemplarStore> {
        &self.inner.exemplars
    }

    /// Running totals of OTLP delta series.
    pub fn deltas(&self) -> &Arc<DeltaState> {
        &self.inner.deltas
    }

    /// Permits for OTLP requests in flight.
    pub fn ingest_permits(&self) -> &Arc<Semaphore> {
        &self.inner.ingest_permits
    }

    /// The HTTP layer's settings.
    pub fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }
}
