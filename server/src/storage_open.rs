//! Opening and closing the store: the one place that knows which store Vigil runs on.

use std::path::Path;
use std::sync::Arc;

use vigil_storage::{Db, DbOptions, Storage, SyncPolicy};

use crate::config::StorageConfig;

/// An open store and what to do with it over the server's life.
pub struct OpenedStore {
    db: Arc<Db>,
    /// Samples replayed from the WAL while opening.
    pub replayed_samples: u64,
}

impl OpenedStore {
    /// The store as the API uses it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.db.clone()
    }

    /// fsyncs the WAL; the server calls it every `storage.wal_sync_interval`.
    pub fn sync(&self) -> anyhow::Result<()> {
        Ok(self.db.sync()?)
    }

    /// Flushes and fsyncs the WAL at shutdown, after the API and the sync loop have
    /// stopped. The `Db` itself is released when its last reference goes.
    pub fn close(&self) -> anyhow::Result<()> {
        Ok(self.db.sync()?)
    }
}

/// Opens the store under `path`, replaying its WAL; runs on a blocking thread.
pub fn open(path: &Path, config: &StorageConfig) -> anyhow::Result<OpenedStore> {
    let sync = if config.wal_sync_interval_ms() == 0 { SyncPolicy::Always } else { SyncPolicy::Periodic };
    let db = Db::open(path, DbOptions { sync, ..DbOptions::default() })?;
    let replayed_samples = db.num_samples();
    Ok(OpenedStore { db: Arc::new(db), replayed_samples })
}
