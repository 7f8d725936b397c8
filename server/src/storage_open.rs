//! Opening and closing the store: the one place that knows which store Vigil runs on.
//!
//! For now this opens an in-memory [`MemStorage`] (nothing survives a restart). The
//! integration step swaps in `vigil_storage::Db::open(path, opts)` here: keep the
//! `Db` in [`OpenedStore`], call `db.sync()` from [`OpenedStore::sync`] (the server
//! calls it every `storage.wal_sync_interval`) and `db.close()` from
//! [`OpenedStore::close`] (called once at shutdown, after the HTTP server stopped).

use std::path::Path;
use std::sync::Arc;

use vigil_storage::Storage;
use vigil_storage::memory::MemStorage;

use crate::config::StorageConfig;

/// An open store and what to do with it over the server's life.
pub struct OpenedStore {
    storage: Arc<dyn Storage>,
    /// Samples replayed from the WAL while opening (0 for the in-memory store).
    pub replayed_samples: u64,
}

impl OpenedStore {
    /// The store as the API uses it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// Flushes the WAL to disk. The in-memory store has no WAL: nothing to flush.
    pub fn sync(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Flushes and releases the store at shutdown, after the API and the sync loop have
    /// stopped. The in-memory store has nothing to flush.
    pub fn close(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Opens the store under `path` (replaying its WAL); runs on a blocking thread.
pub fn open(path: &Path, config: &StorageConfig) -> anyhow::Result<OpenedStore> {
    let _ = config;
    tracing::warn!(path = %path.display(), "storage is in memory for now: data does not survive a restart");
    Ok(OpenedStore { storage: Arc::new(MemStorage::new()), replayed_samples: 0 })
}
