//! Backfill: writing historical samples straight into blocks (`vigil import`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{BLOCKS_DIR, Db, blocks};
use crate::block::{Block, NewBlock, write_block};
use crate::error::StorageError;
use crate::labels::Labels;
use crate::sample::Sample;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Samples written to blocks.
    pub imported: u64,
    /// Samples skipped for being at or after the head's oldest sample (the head owns that
    /// range; append them instead).
    pub too_new: u64,
    /// Samples skipped for repeating a timestamp of the same series (the first is kept).
    pub duplicates: u64,
    /// Blocks written (one per block range the data touches).
    pub blocks: u32,
}

impl Db {
    /// Writes `series` (any order, any age) as blocks, one per block range, so history can
    /// be migrated in. Only samples older than everything in the head are taken; the
    /// rest is counted as skipped. Imported blocks may overlap existing ones: queries
    /// merge them and compaction folds them together (a repeated import adds nothing).
    /// Samples before the newest imported one are refused by later commits, as after a
    /// block cut.
    pub fn import(&self, series: Vec<(Labels, Vec<Sample>)>) -> Result<ImportReport, StorageError> {
        let _one_at_a_time = self.maintenance.lock();
        let mut report = ImportReport::default();
        let head_min = {
            let _no_commit = self.commit.lock();
            if self.head_min.load(Ordering::Relaxed) <= self.head_max.load(Ordering::Relaxed) {
                self.head_min.load(Ordering::Relaxed).max(self.min_valid.load(Ordering::Relaxed))
            } else {
                i64::MAX
            }
        };
        let range = self.opts.block_range;
        // block range start → labels → samples
        let mut windows: BTreeMap<i64, BTreeMap<Labels, Vec<Sample>>> = BTreeMap::new();
        let mut newest = i64::MIN;
        for (labels, samples) in series {
            for s in samples {
                if s.t >= head_min {
                    report.too_new += 1;
                    continue;
                }
                newest = newest.max(s.t);
                let w = s.t.div_euclid(range).saturating_mul(range);
                windows.entry(w).or_default().entry(labels.clone()).or_default().push(s);
            }
        }
        if windows.is_empty() {
            return Ok(report);
        }
        {
            // From here on the head refuses what the imported blocks cover, as a restart
            // (which takes the limit from the newest block) would.
            let _no_commit = self.commit.lock();
            self.min_valid.fetch_max(newest.saturating_add(1), Ordering::Relaxed);
        }
        for (start, by_labels) in windows {
            let data = by_labels.into_iter().map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.t);
                let before = samples.len();
                samples.dedup_by_key(|s| s.t);
                report.duplicates += (before - samples.len()) as u64;
                report.imported += samples.len() as u64;
                Ok((labels, samples))
            });
            let spec = NewBlock {
                min_time: start,
                max_time: start.saturating_add(range).min(newest.saturating_add(1)),
                level: 1,
                sources: Vec::new(),
                parents: Vec::new(),
            };
            if let Some(meta) = write_block(&self.dir.join(BLOCKS_DIR), spec, data)? {
                let block = Block::open(&self.dir.join(BLOCKS_DIR).join(&meta.ulid))?;
                block.verify_chunks()?;
                let mut guard = self.blocks.write();
                let mut next: Vec<Arc<Block>> = guard.iter().cloned().collect();
                next.push(Arc::new(block));
                blocks::sort(&mut next);
                *guard = Arc::new(next);
                report.blocks += 1;
            }
        }
        tracing::info!(?report, "samples imported into blocks");
        Ok(report)
    }
}
