//! Series by label hash, in lock stripes so that concurrent writers rarely contend.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use hashbrown::HashTable;
use parking_lot::RwLock;

use super::series::MemSeries;
use crate::error::StorageError;
use crate::labels::Labels;

/// Lock stripes: a power of two well above the core count of the machines we target,
/// so two writers rarely wait on the same stripe.
const STRIPES: usize = 64;

/// Passes a key that is already a good hash (xxh3 of the labels) straight through.
#[derive(Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

/// A hash map keyed by an already well-mixed `u64`.
pub(crate) type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<PassThroughHasher>>;

/// One stripe: the series themselves, found by their label hash. The table holds only
/// the pointer (8 bytes a series, where a map from hash to a bucket of series took 40);
/// it recomputes a series' hash from its labels when it grows, which is rare.
type Stripe = RwLock<HashTable<Arc<MemSeries>>>;

/// An odd constant (2^64 over the golden ratio) for [`table_hash`].
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash a stripe's table files a label hash under. The stripe was chosen by the
/// label hash's top bits, which the table also uses for its tags; multiplying by an odd
/// constant spreads every bit into the top ones and leaves the low ones as random.
fn table_hash(label_hash: u64) -> u64 {
    label_hash.wrapping_mul(MIX)
}

/// The table hash of a series, recomputed from its labels when a table grows.
fn hash_of(s: &Arc<MemSeries>) -> u64 {
    table_hash(s.labels.stable_hash())
}

/// Series by `Labels::stable_hash`; label sets sharing a hash are all kept.
pub(crate) struct StripedSeries {
    stripes: Box<[Stripe]>,
}

impl StripedSeries {
    /// An empty map.
    pub(crate) fn new() -> Self {
        StripedSeries { stripes: (0..STRIPES).map(|_| RwLock::new(HashTable::new())).collect() }
    }

    fn stripe(&self, hash: u64) -> &Stripe {
        // The table's own hash is mixed (`table_hash`), so the top bits are free here.
        &self.stripes[(hash >> 58) as usize % STRIPES]
    }

    /// The series with exactly these labels.
    pub(crate) fn get(&self, hash: u64, labels: &Labels) -> Option<Arc<MemSeries>> {
        self.stripe(hash).read().find(table_hash(hash), |s| s.labels == *labels).cloned()
    }

    /// Removes `series` (the very one, not another with equal labels).
    pub(crate) fn remove(&self, hash: u64, series: &Arc<MemSeries>) {
        let mut stripe = self.stripe(hash).write();
        if let Ok(entry) = stripe.find_entry(table_hash(hash), |s| Arc::ptr_eq(s, series)) {
            entry.remove();
        }
    }

    /// The series with these labels, or the one `create` makes while the stripe is
    /// locked (so two writers cannot both create it); `true` when it was created.
    pub(crate) fn get_or_insert_with(
        &self,
        hash: u64,
        labels: &Labels,
        create: impl FnOnce() -> Result<Arc<MemSeries>, StorageError>,
    ) -> Result<(Arc<MemSeries>, bool), StorageError> {
        if let Some(s) = self.get(hash, labels) {
            return Ok((s, false));
        }
        let mut stripe = self.stripe(hash).write();
        if let Some(s) = stripe.find(table_hash(hash), |s| s.labels == *labels) {
            return Ok((s.clone(), false));
        }
        let s = create()?;
        stripe.insert_unique(table_hash(hash), s.clone(), hash_of);
        Ok((s, true))
    }
}
