//! Reading an index file through a memory map.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;
use roaring::RoaringBitmap;

use super::{
    ChunkMeta, FOOTER_LEN, HEADER_LEN, INDEX_MAGIC, INDEX_VERSION, SECTIONS, SERIES_OFFSET_LEN, TOC_ENTRY_LEN,
};
use crate::block::chunks::{ChunkLoc, map_file};
use crate::error::StorageError;
use crate::labels::{Label, Labels};
use crate::lookup::{NameCollector, read_series_labels, split_by_name};
use crate::matcher::dictionary::values_where;
use crate::matcher::{MatchOp, Matcher};
use crate::varint::{get_uvarint, unzigzag};

/// Index of each section in the table of contents.
const SYMBOLS: usize = 0;
const SERIES: usize = 1;
const SERIES_OFFSETS: usize = 2;
const POSTINGS: usize = 3;
const POSTINGS_TABLE: usize = 4;

/// An open index. Symbols and the label-value dictionary (with each pair's postings
/// location) are held in memory; series entries and postings are read from the map.
pub(crate) struct IndexReader {
    map: Mmap,
    sections: [Range<usize>; SECTIONS],
    symbols: Vec<String>,
    /// name → value → byte range of its postings in the postings section.
    dictionary: BTreeMap<String, BTreeMap<String, Range<usize>>>,
    num_series: u32,
}

fn corrupt(why: &str) -> StorageError {
    StorageError::Corrupt(format!("index: {why}"))
}

/// Reads varints from a slice, failing on truncation.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn uvarint(&mut self) -> Result<u64, StorageError> {
        let (v, n) = get_uvarint(self.0).ok_or_else(|| corrupt("bad varint"))?;
        self.0 = &self.0[n..];
        Ok(v)
    }

    fn usize(&mut self) -> Result<usize, StorageError> {
        usize::try_from(self.uvarint()?).map_err(|_| corrupt("number out of range"))
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], StorageError> {
        if n > self.0.len() {
            return Err(corrupt("ends early"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
}

impl IndexReader {
    /// Maps the index at `path` and verifies every section's checksum.
    pub(crate) fn open(path: &Path) -> Result<Self, StorageError> {
        let map = map_file(path)?;
        let len = map.len();
        if len < HEADER_LEN + FOOTER_LEN || map[..4] != INDEX_MAGIC || map[4] != INDEX_VERSION {
            return Err(corrupt("bad header"));
        }
        if map[len - 4..] != INDEX_MAGIC {
            return Err(corrupt("bad footer"));
        }
        let toc = &map[len - FOOTER_LEN..len - 4];
        let mut sections: [Range<usize>; SECTIONS] = Default::default();
        for (i, s) in sections.iter_mut().enumerate() {
            let e = &toc[i * TOC_ENTRY_LEN..(i + 1) * TOC_ENTRY_LEN];
            let word =
                |a: usize, b: usize| e[a..b].iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
            let (off, n, crc) = (word(0, 8), word(8, 16), word(16, 20) as u32);
            let start = usize::try_from(off).map_err(|_| corrupt("section offset"))?;
            let end = usize::try_from(n)
                .ok()
                .and_then(|n| start.checked_add(n))
                .ok_or_else(|| corrupt("section"))?;
            if start < HEADER_LEN || end > len - FOOTER_LEN {
                return Err(corrupt("section out of bounds"));
            }
            if crc32fast::hash(&map[start..end]) != crc {
                return Err(corrupt("section checksum mismatch"));
            }
            *s = start..end;
        }
        let mut r =
            IndexReader { map, sections, symbols: Vec::new(), dictionary: BTreeMap::new(), num_series: 0 };
        r.symbols = r.read_symbols()?;
        r.dictionary = r.read_dictionary()?;
        let offsets = r.sections[SERIES_OFFSETS].len();
        if !offsets.is_multiple_of(SERIES_OFFSET_LEN) {
            return Err(corrupt("series offsets"));
        }
        r.num_series = u32::try_from(offsets / SERIES_OFFSET_LEN).map_err(|_| corrupt("too many series"))?;
        Ok(r)
    }

    fn section(&self, i: usize) -> &[u8] {
        &self.map[self.sections[i].clone()]
    }

    fn read_symbols(&self) -> Result<Vec<String>, StorageError> {
        let mut c = Cursor(self.section(SYMBOLS));
        let n = c.usize()?;
        let mut out = Vec::with_capacity(n.min(c.0.len()));
        for _ in 0..n {
            let len = c.usize()?;
            let s = std::str::from_utf8(c.bytes(len)?).map_err(|_| corrupt("symbol not UTF-8"))?;
            out.push(s.to_string());
        }
        Ok(out)
    }

    fn symbol(&self, r: u64) -> Result<&str, StorageError> {
        usize::try_from(r)
            .ok()
            .and_then(|i| self.symbols.get(i))
            .map(String::as_str)
            .ok_or_else(|| corrupt("symbol ref"))
    }

    fn read_dictionary(&self) -> Result<BTreeMap<String, BTreeMap<String, Range<usize>>>, StorageError> {
        let mut c = Cursor(self.section(POSTINGS_TABLE));
        let lists = self.sections[POSTINGS].len();
        let n = c.usize()?;
        let mut out: BTreeMap<String, BTreeMap<String, Range<usize>>> = BTreeMap::new();
        for _ in 0..n {
            let name = self.symbol(c.uvarint()?)?.to_string();
            let value = self.symbol(c.uvarint()?)?.to_string();
            let start = c.usize()?;
            let end =
                c.usize()?.checked_add(start).filter(|&e| e <= lists).ok_or_else(|| corrupt("postings"))?;
            out.entry(name).or_default().insert(value, start..end);
        }
        Ok(out)
    }

    /// Number of series.
    pub(crate) fn num_series(&self) -> u32 {
        self.num_series
    }

    fn postings_at(&self, range: &Range<usize>) -> Result<RoaringBitmap, StorageError> {
        let bytes = &self.section(POSTINGS)[range.clone()];
        RoaringBitmap::deserialize_from(bytes).map_err(|_| corrupt("postings list"))
    }

    /// Ordinals of the series with label `name` = `value`.
    fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap, StorageError> {
        match self.dictionary.get(name).and_then(|v| v.get(value)) {
            Some(r) => self.postings_at(r),
            None => Ok(RoaringBitmap::new()),
        }
    }

    /// Union of the postings of the values of `m.name` that `m` accepts (`accept`) or
    /// rejects, found through the sorted dictionary.
    fn postings_where(&self, m: &Matcher, accept: bool) -> Result<RoaringBitmap, StorageError> {
        let mut out = RoaringBitmap::new();
        let Some(values) = self.dictionary.get(&m.name) else { return Ok(out) };
        for (_, r) in values_where(values, m, accept) {
            out |= self.postings_at(r)?;
        }
        Ok(out)
    }

    /// Ordinals of the series matching every matcher (all series when there are none),
    /// with Prometheus's rule that a matcher matching `""` also selects series without
    /// the label.
    pub(crate) fn postings_for(&self, matchers: &[Matcher]) -> Result<RoaringBitmap, StorageError> {
        let (selecting, excluding): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        let mut result: Option<RoaringBitmap> = None;
        for m in selecting {
            let ids = match m.op {
                MatchOp::Equal => self.postings(&m.name, &m.value)?,
                _ => self.postings_where(m, true)?,
            };
            let r = match result {
                Some(r) => r & ids,
                None => ids,
            };
            if r.is_empty() {
                return Ok(r);
            }
            result = Some(r);
        }
        let mut result = result.unwrap_or_else(|| {
            let mut all = RoaringBitmap::new();
            all.insert_range(0..self.num_series);
            all
        });
        for m in excluding.into_iter().filter(|m| !m.matches_everything()) {
            result -= match m.op {
                MatchOp::NotEqual => self.postings(&m.name, &m.value)?,
                _ => self.postings_where(m, false)?,
            };
            if result.is_empty() {
                break;
            }
        }
        Ok(result)
    }

    /// Sorted label names of the series matching `matchers` (all when empty).
    pub(crate) fn label_names_for(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() {
            return Ok(self.dictionary.keys().cloned().collect());
        }
        let mut names = NameCollector::new(self.dictionary.len());
        for id in &self.postings_for(matchers)? {
            let mut more = true;
            self.visit_labels(id, |n, _| more = names.add(std::iter::once(n)))?;
            if !more {
                break;
            }
        }
        Ok(names.into_sorted())
    }

    /// Sorted values of label `name` over the series matching `matchers` (all when
    /// empty); chooses between reading the matched series and intersecting each
    /// candidate value's postings by their sizes.
    pub(crate) fn label_values_for(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let Some(values) = self.dictionary.get(name) else { return Ok(Vec::new()) };
        if matchers.is_empty() {
            return Ok(values.keys().cloned().collect());
        }
        let (same, other) = split_by_name(name, matchers);
        let mut candidates: Vec<(&String, &Range<usize>)> = match same.split_first() {
            Some((first, rest)) => {
                let mut c = values_where(values, first, true);
                c.retain(|(v, _)| rest.iter().all(|m| m.matches(v)));
                c
            }
            None => values.iter().collect(),
        };
        if !other.is_empty() && !candidates.is_empty() {
            let ids = self.postings_for(&other)?;
            if read_series_labels(ids.len(), candidates.len()) {
                let mut found = BTreeSet::new();
                for id in &ids {
                    self.visit_labels(id, |n, v| {
                        if n == name {
                            found.insert(v);
                        }
                    })?;
                }
                candidates.retain(|(v, _)| found.contains(v.as_str()));
            } else {
                let mut kept = Vec::with_capacity(candidates.len());
                for (v, r) in candidates {
                    if !self.postings_at(r)?.is_disjoint(&ids) {
                        kept.push((v, r));
                    }
                }
                candidates = kept;
            }
        }
        Ok(candidates.into_iter().map(|(v, _)| v.clone()).collect())
    }

    /// The start of the entry of the series with `ordinal` in the series section.
    fn series_entry(&self, ordinal: u32) -> Result<Cursor<'_>, StorageError> {
        let offsets = self.section(SERIES_OFFSETS);
        let at = ordinal as usize * SERIES_OFFSET_LEN;
        let word = offsets.get(at..at + SERIES_OFFSET_LEN).ok_or_else(|| corrupt("series ordinal"))?;
        let mut b = [0u8; 8];
        b.copy_from_slice(word);
        let start = usize::try_from(u64::from_le_bytes(b)).map_err(|_| corrupt("series offset"))?;
        let entries = self.section(SERIES);
        Ok(Cursor(entries.get(start..).ok_or_else(|| corrupt("series offset"))?))
    }

    /// Calls `f` with each label (name, value) of the series with `ordinal`, without
    /// copying them or reading its chunks.
    fn visit_labels<'a>(
        &'a self,
        ordinal: u32,
        mut f: impl FnMut(&'a str, &'a str),
    ) -> Result<(), StorageError> {
        let mut c = self.series_entry(ordinal)?;
        for _ in 0..c.usize()? {
            let name = self.symbol(c.uvarint()?)?;
            f(name, self.symbol(c.uvarint()?)?);
        }
        Ok(())
    }

    /// The labels and chunks of the series with `ordinal`.
    pub(crate) fn series(&self, ordinal: u32) -> Result<(Labels, Vec<ChunkMeta>), StorageError> {
        let mut c = self.series_entry(ordinal)?;
        let n = c.usize()?;
        let mut labels = Vec::with_capacity(n.min(c.0.len()));
        for _ in 0..n {
            let name = self.symbol(c.uvarint()?)?;
            let value = self.symbol(c.uvarint()?)?;
            labels.push(Label::new(name, value));
        }
        let n = c.usize()?;
        let mut chunks = Vec::with_capacity(n.min(c.0.len()));
        let mut prev_max = 0i64;
        for i in 0..n {
            let d = unzigzag(c.uvarint()?);
            let min_t = if i == 0 { d } else { prev_max.wrapping_add(d) };
            let max_t = min_t.wrapping_add(c.uvarint()? as i64);
            let frame = c.uvarint()?;
            let offset = u32::try_from(c.uvarint()?).map_err(|_| corrupt("chunk offset"))?;
            let len = u32::try_from(c.uvarint()?).map_err(|_| corrupt("chunk length"))?;
            chunks.push(ChunkMeta { min_t, max_t, loc: ChunkLoc { frame, offset, len } });
            prev_max = max_t;
        }
        Ok((Labels::from_sorted_unchecked(labels), chunks))
    }
}
