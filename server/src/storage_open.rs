//! Opening and closing the store: the one place that knows which store Vigil runs on.

use std::path::Path;
use std::sync::{Arc, Mutex};

use vigil_storage::db::Maintenance;
use vigil_storage::{Db, DbOptions, Storage, SyncPolicy};

use crate::config::StorageConfig;

/// An open store and what to do with it over the server's life.
pub struct OpenedStore {
    db: Arc<Db>,
    /// The background maintenance thread, taken and stopped at close.
    maintenance: Mutex<Option<Maintenance>>,
    /// Samples replayed from the WAL while opening.
    pub replayed_samples: u64,
}

impl OpenedStore {
    /// The store as the API uses it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.db.clone()
    }

    /// The block store itself, for the admin and status APIs.
    pub fn db(&self) -> Arc<Db> {
        self.db.clone()
    }

    /// fsyncs the WAL; the server calls it every `storage.wal_sync_interval`.
    pub fn sync(&self) -> anyhow::Result<()> {
        Ok(self.db.sync()?)
    }

    /// Stops maintenance (after the pass in progress), then fsyncs the WAL and writes the
    /// head snapshot at shutdown, after the API and the sync loop have stopped, so the
    /// next start loads the head instead of replaying the WAL. The `Db` itself is
    /// released when its last reference goes.
    pub fn close(&self) -> anyhow::Result<()> {
        let running =
            self.maintenance.lock().map_err(|_| anyhow::anyhow!("maintenance lock poisoned"))?.take();
        if let Some(m) = running {
            m.stop();
        }
        Ok(self.db.write_head_snapshot()?)
    }
}

/// Opens the store under `path`, replaying its WAL; runs on a blocking thread.
pub fn open(path: &Path, config: &StorageConfig) -> anyhow::Result<OpenedStore> {
    let sync = if config.wal_sync_interval_ms() == 0 { SyncPolicy::Always } else { SyncPolicy::Periodic };
    let db = Arc::new(Db::open(path, DbOptions { sync, ..config.db_options()? })?);
    let replayed_samples = db.num_samples();
    let maintenance = Db::spawn_maintenance(db.clone(), config.maintenance_interval())?;
    Ok(OpenedStore { db, maintenance: Mutex::new(Some(maintenance)), replayed_samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_with_configured_options_and_closes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::Config::parse("storage:\n  block_range: 5m\n  retention:\n    size: 1MB\n")
            .expect("config");
        let store = open(dir.path(), &config.storage).expect("open");
        assert_eq!(store.db().options().block_range, 300_000);
        assert_eq!(store.db().options().retention_size, 1 << 20);
        store.close().expect("close");
        assert!(store.maintenance.lock().expect("lock").is_none(), "maintenance stopped");
        assert!(dir.path().join("head_snapshot").exists(), "the head is written out for the next start");
    }
}
