//! Label sets: sorted, deduplicated name/value pairs that identify a series.
//!
//! A label set lives in one shared string (see [`Labels`]): a million series hold a
//! million label sets, and one allocation per set instead of two per pair is the larger
//! part of a series' memory saved.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// The label that holds the metric name; otherwise an ordinary label.
pub const METRIC_NAME: &str = "__name__";

/// One owned name/value pair, for building label sets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Label name; any UTF-8 string since Prometheus 3.
    pub name: String,
    /// Label value; never empty inside a stored label set.
    pub value: String,
}

impl Label {
    /// Makes a label.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label { name: name.into(), value: value.into() }
    }
}

/// One name/value pair borrowed from a [`Labels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelRef<'a> {
    /// Label name.
    pub name: &'a str,
    /// Label value.
    pub value: &'a str,
}

impl LabelRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Label {
        Label::new(self.name, self.value)
    }
}

/// A label set sorted by name with unique names and non-empty values; cloning shares
/// the storage.
///
/// The pairs are packed into one string: for each pair the name's length, the value's
/// length, the name and the value. A length is written in ASCII digits of six bits each
/// (`0x40` marks "more digits follow", low digits first), so the whole buffer stays valid
/// UTF-8 and every piece can be sliced out without copying or unchecked code. The
/// encoding is canonical, so equal label sets have equal strings and equality and
/// hashing work on the string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Labels(Arc<str>);

/// Payload bits per length digit.
const DIGIT_BITS: u32 = 6;
/// Marks a length digit that more digits follow.
const MORE_DIGITS: u8 = 0x40;
/// Mask of a digit's payload.
const DIGIT_MASK: u8 = 0x3f;

/// Appends `len` as ASCII length digits.
fn push_len(out: &mut String, mut len: usize) {
    loop {
        let digit = (len & usize::from(DIGIT_MASK)) as u8;
        len >>= DIGIT_BITS;
        if len == 0 {
            out.push(char::from(digit));
            return;
        }
        out.push(char::from(digit | MORE_DIGITS));
    }
}

/// Reads a length written by [`push_len`] at `*pos`, advancing it.
fn read_len(bytes: &[u8], pos: &mut usize) -> usize {
    let (mut len, mut shift) = (0usize, 0u32);
    while let Some(&b) = bytes.get(*pos) {
        *pos += 1;
        len |= usize::from(b & DIGIT_MASK) << shift;
        if b & MORE_DIGITS == 0 {
            break;
        }
        shift += DIGIT_BITS;
    }
    len
}

/// Bytes a pair takes in the packed string.
fn packed_len(name: &str, value: &str) -> usize {
    let digits = |mut n: usize| {
        let mut d = 1;
        while n >> DIGIT_BITS > 0 {
            n >>= DIGIT_BITS;
            d += 1;
        }
        d
    };
    digits(name.len()) + digits(value.len()) + name.len() + value.len()
}

/// Packs pairs that are already sorted by name, unique and non-empty.
fn pack<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Labels {
    let mut out = String::with_capacity(pairs.clone().map(|(n, v)| packed_len(n, v)).sum());
    for (name, value) in pairs {
        push_len(&mut out, name.len());
        push_len(&mut out, value.len());
        out.push_str(name);
        out.push_str(value);
    }
    Labels(Arc::from(out))
}

impl Default for Labels {
    fn default() -> Self {
        Labels(Arc::from(""))
    }
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Builds a label set from pairs in any order: sorts them, keeps the last of
    /// duplicate names, and drops empty values (an empty value means "no label").
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n, v);
        }
        b.build()
    }

    /// Packs labels that the caller guarantees are sorted by name, unique and non-empty.
    pub fn from_sorted_unchecked(labels: Vec<Label>) -> Self {
        Labels::from_sorted_refs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Packs borrowed pairs that the caller guarantees are sorted by name, unique and
    /// non-empty, without owning them first.
    pub fn from_sorted_refs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        debug_assert!({
            let names: Vec<&str> = pairs.clone().map(|(n, _)| n).collect();
            names.windows(2).all(|w| w[0] < w[1])
        });
        pack(pairs)
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for l in self.iter() {
            match l.name.cmp(name) {
                Ordering::Less => {}
                Ordering::Equal => return Some(l.value),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// The metric name, if the set has one.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The pairs in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter { packed: &self.0, pos: 0 }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of the packed pairs (without the shared header), for memory accounting.
    pub fn packed_bytes(&self) -> usize {
        self.0.len()
    }

    /// The pairs as owned labels.
    pub fn to_vec(&self) -> Vec<Label> {
        self.iter().map(|l| l.to_owned()).collect()
    }

    /// A stable 64-bit hash of the pairs (xxh3 over names and values with separators),
    /// the same in every process, so it can key series maps and be persisted.
    pub fn stable_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in self.iter() {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// True when both share the same storage, a cheap early-out before comparing pairs.
    pub(crate) fn same_storage(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A builder starting from these labels.
    pub fn to_builder(&self) -> LabelsBuilder {
        LabelsBuilder { labels: self.to_vec() }
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    /// Pair by pair (name, then value), a prefix first: Prometheus's order of series.
    fn cmp(&self, other: &Self) -> Ordering {
        if self.same_storage(other) {
            return Ordering::Equal;
        }
        self.iter().cmp(other.iter())
    }
}

/// The pairs of a [`Labels`] in name order.
#[derive(Clone)]
pub struct LabelsIter<'a> {
    packed: &'a str,
    pos: usize,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = LabelRef<'a>;

    fn next(&mut self) -> Option<LabelRef<'a>> {
        let bytes = self.packed.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        let name_len = read_len(bytes, &mut self.pos);
        let value_len = read_len(bytes, &mut self.pos);
        let name_end = self.pos + name_len;
        let value_end = name_end + value_len;
        // Always in bounds and on character boundaries: `pack` wrote the buffer; an
        // impossible miss ends the iteration instead of panicking.
        let (Some(name), Some(value)) =
            (self.packed.get(self.pos..name_end), self.packed.get(name_end..value_end))
        else {
            self.pos = bytes.len();
            return None;
        };
        self.pos = value_end;
        Some(LabelRef { name, value })
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Labels {
    /// Prometheus's notation: `{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = LabelRef<'a>;
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Edits a label set and produces a new sorted one.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        LabelsBuilder::default()
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (name, value) = (name.into(), value.into());
        match self.labels.iter().position(|l| l.name == name) {
            Some(i) if value.is_empty() => {
                self.labels.remove(i);
            }
            Some(i) => self.labels[i].value = value,
            None if value.is_empty() => {}
            None => self.labels.push(Label { name, value }),
        }
        self
    }

    /// Removes `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    /// Keeps only the labels whose name satisfies `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(&l.name));
        self
    }

    /// The finished, sorted label set.
    pub fn build(&self) -> Labels {
        let mut order: Vec<&Label> = self.labels.iter().collect();
        order.sort_by(|a, b| a.name.cmp(&b.name));
        pack(order.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        assert_eq!(l.to_string(), r#"{a="3", b="2"}"#);
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.get("0"), None);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn stable_hash_separates_names_and_values() {
        let a = Labels::from_pairs([("ab", "c")]);
        let b = Labels::from_pairs([("a", "bc")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(a.stable_hash(), Labels::from_pairs([("ab", "c")]).stable_hash());
    }

    #[test]
    fn stable_hash_is_unchanged_by_the_packed_form() {
        // The value the hash had when label sets were vectors of pairs: it is persisted
        // and keys rule evaluation offsets, so it must not move.
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for (n, v) in [("__name__", "up"), ("job", "node")] {
            h.update(n.as_bytes());
            h.update(&[0xff]);
            h.update(v.as_bytes());
            h.update(&[0xff]);
        }
        assert_eq!(l.stable_hash(), h.digest());
    }

    #[test]
    fn long_names_and_values_round_trip() {
        let long = "é".repeat(3000);
        let l = Labels::from_pairs([("a", long.as_str()), (long.as_str(), "x"), ("z", "")]);
        let pairs: Vec<(&str, &str)> = l.iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(pairs, vec![("a", long.as_str()), (long.as_str(), "x")]);
    }

    #[test]
    fn one_allocation_smaller_than_a_pair_of_strings_per_label() {
        let l = Labels::from_pairs([("__name__", "node_cpu_seconds_total"), ("cpu", "3"), ("mode", "idle")]);
        assert_eq!(l.packed_bytes(), 6 + 8 + 22 + 3 + 1 + 4 + 4);
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("\\PC{0,80}", "\\PC{0,300}"), 0..8)
    }

    proptest! {
        #[test]
        fn packing_keeps_every_pair_and_the_order_of_vectors(a in pairs(), b in pairs()) {
            let (la, lb) = (Labels::from_pairs(a.clone()), Labels::from_pairs(b.clone()));
            let owned = |pairs: Vec<(String, String)>| {
                let mut m = std::collections::BTreeMap::new();
                for (n, v) in pairs {
                    if v.is_empty() { m.remove(&n); } else { m.insert(n, v); }
                }
                m.into_iter().map(|(name, value)| Label { name, value }).collect::<Vec<_>>()
            };
            let (va, vb) = (owned(a), owned(b));
            prop_assert_eq!(la.to_vec(), va.clone());
            prop_assert_eq!(la.cmp(&lb), va.cmp(&vb));
            prop_assert_eq!(la == lb, va == vb);
            for l in &va {
                prop_assert_eq!(la.get(&l.name), Some(l.value.as_str()));
            }
            prop_assert_eq!(la.len(), va.len());
        }
    }
}
