//! When the head snapshot is written while the database runs, so that a crash replays
//! only the WAL since the newest one.
//!
//! A running snapshot takes the WAL position under the commit lock, then writes the
//! series one at a time while commits go on. A series' image may therefore hold samples
//! (or lack samples deleted) after the position; replaying the WAL from the position on
//! top gives the same head, because replay takes an exact repeat of a stored sample as a
//! no-op and applies deletions in log order again.

use std::time::Instant;

use super::Db;
use crate::error::StorageError;
use crate::wal::WalPosition;

/// WAL bytes since the newest snapshot before another is due, at least: replaying this
/// much (about 1.5 million samples) takes a fraction of a second.
const MIN_WAL_BYTES: u64 = 16 << 20;

/// What the WAL holds that no snapshot covers.
#[derive(Debug, Clone, Copy)]
pub(super) struct SnapshotClock {
    /// Bytes of WAL before `since` that no snapshot covers.
    pub(super) carried: u64,
    /// Where the uncovered WAL continues.
    pub(super) since: WalPosition,
    /// Size of the newest snapshot: another is due only once the WAL after it is at
    /// least as large, so snapshots never write more than the WAL does.
    pub(super) last_bytes: u64,
}

/// Approximate WAL bytes from `a` to `b` (whole segments counted as full).
fn wal_bytes_between(a: WalPosition, b: WalPosition, segment_size: u64) -> u64 {
    if (b.segment, b.offset) <= (a.segment, a.offset) {
        return 0;
    }
    let segments = u64::from(b.segment - a.segment);
    (segments * segment_size + b.offset).saturating_sub(a.offset)
}

impl Db {
    /// Writes a head snapshot while commits go on (see the module doc) if the WAL since
    /// the newest one has grown past the threshold, or `force`; returns whether it did.
    /// The caller holds the maintenance lock.
    pub(super) fn snapshot_if_due(&self, force: bool) -> Result<bool, StorageError> {
        let now = self.commit.lock().wal.position();
        let clock = *self.snapshot_clock.lock();
        let uncovered = clock.carried + wal_bytes_between(clock.since, now, self.opts.segment_size);
        if uncovered == 0 || (!force && uncovered < clock.last_bytes.max(MIN_WAL_BYTES)) {
            return Ok(false);
        }
        self.snapshot_running_locked()?;
        Ok(true)
    }

    /// Writes a head snapshot if one is due (between maintenance passes).
    pub(super) fn snapshot_when_due(&self) {
        let _no_maintenance = self.maintenance.lock();
        self.snapshot_logging_failure(false);
    }

    /// [`Db::snapshot_if_due`], logging a failure: only restarts get slower without the
    /// snapshot, which is not worth failing anything for. Returns whether it wrote one.
    pub(super) fn snapshot_logging_failure(&self, force: bool) -> bool {
        self.snapshot_if_due(force).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "writing the head snapshot failed");
            false
        })
    }

    /// Writes a head snapshot while commits go on; the WAL from the position taken first
    /// is replayed on top of it after a crash. Waits for maintenance in progress.
    pub fn snapshot_running(&self) -> Result<(), StorageError> {
        let _no_maintenance = self.maintenance.lock();
        self.snapshot_running_locked()
    }

    /// [`Db::snapshot_running`] for a caller holding the maintenance lock.
    fn snapshot_running_locked(&self) -> Result<(), StorageError> {
        let started = Instant::now();
        let position = self.commit.lock().wal.position();
        let written = crate::head::snapshot::write(&self.dir, &self.head, &self.spill, position)?;
        *self.snapshot_clock.lock() =
            SnapshotClock { carried: 0, since: position, last_bytes: written.bytes };
        tracing::info!(
            series = written.series,
            bytes = written.bytes,
            duration_ms = started.elapsed().as_millis() as u64,
            "head snapshot written while running"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_bytes_count_across_segments() {
        let p = |segment, offset| WalPosition { segment, offset };
        assert_eq!(wal_bytes_between(p(3, 100), p(3, 250), 1000), 150);
        assert_eq!(wal_bytes_between(p(3, 900), p(5, 50), 1000), 1150);
        assert_eq!(wal_bytes_between(p(5, 50), p(3, 900), 1000), 0);
    }
}
