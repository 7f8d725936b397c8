//! Series by label hash, in lock stripes so that concurrent writers rarely contend.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

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

/// Every series with one hash: almost always one, so it is kept inline (no allocation
/// per series); a hash collision moves the bucket to a vector.
enum Bucket {
    One(Arc<MemSeries>),
    Many(Vec<Arc<MemSeries>>),
}

impl Bucket {
    fn find(&self, labels: &Labels) -> Option<&Arc<MemSeries>> {
        match self {
            Bucket::One(s) => (s.labels == *labels).then_some(s),
            Bucket::Many(v) => v.iter().find(|s| s.labels == *labels),
        }
    }
}

/// One stripe: hash → every series with that hash (more than one only on a collision).
type Stripe = RwLock<HashKeyed<Bucket>>;

/// Series by `Labels::stable_hash`; a hash shared by several label sets keeps them all.
pub(crate) struct StripedSeries {
    stripes: Box<[Stripe]>,
}

impl StripedSeries {
    /// An empty map.
    pub(crate) fn new() -> Self {
        StripedSeries { stripes: (0..STRIPES).map(|_| RwLock::new(HashKeyed::default())).collect() }
    }

    fn stripe(&self, hash: u64) -> &Stripe {
        // The low bits pick the bucket inside a stripe's map; use the high bits here.
        &self.stripes[(hash >> 58) as usize % STRIPES]
    }

    /// The series with exactly these labels.
    pub(crate) fn get(&self, hash: u64, labels: &Labels) -> Option<Arc<MemSeries>> {
        self.stripe(hash).read().get(&hash)?.find(labels).cloned()
    }

    /// Removes `series` (the very one, not another with equal labels).
    pub(crate) fn remove(&self, hash: u64, series: &Arc<MemSeries>) {
        let mut stripe = self.stripe(hash).write();
        match stripe.remove(&hash) {
            Some(Bucket::One(s)) if !Arc::ptr_eq(&s, series) => {
                stripe.insert(hash, Bucket::One(s));
            }
            Some(Bucket::Many(mut v)) => {
                v.retain(|s| !Arc::ptr_eq(s, series));
                match v.len() {
                    0 => {}
                    1 => {
                        if let Some(s) = v.pop() {
                            stripe.insert(hash, Bucket::One(s));
                        }
                    }
                    _ => {
                        stripe.insert(hash, Bucket::Many(v));
                    }
                }
            }
            _ => {}
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
        if let Some(s) = stripe.get(&hash).and_then(|b| b.find(labels)) {
            return Ok((s.clone(), false));
        }
        let s = create()?;
        match stripe.remove(&hash) {
            None => stripe.insert(hash, Bucket::One(s.clone())),
            Some(Bucket::One(other)) => stripe.insert(hash, Bucket::Many(vec![other, s.clone()])),
            Some(Bucket::Many(mut v)) => {
                v.push(s.clone());
                stripe.insert(hash, Bucket::Many(v))
            }
        };
        Ok((s, true))
    }
}
