//! Reading an index file through a memory map.

use std::collections::BTreeMap;
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

    /// Label names, sorted.
    pub(crate) fn label_names(&self) -> impl Iterator<Item = &str> {
        self.dictionary.keys().map(String::as_str)
    }

    /// Values of label `name`, sorted.
    pub(crate) fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.dictionary.get(name).into_iter().flat_map(|v| v.keys().map(String::as_str))
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

    /// Union of the postings of the values of `name` that `keep` accepts.
    fn postings_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Result<RoaringBitmap, StorageError> {
        let mut out = RoaringBitmap::new();
        for (v, r) in self.dictionary.get(name).into_iter().flatten() {
            if keep(v) {
                out |= self.postings_at(r)?;
            }
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
                _ => self.postings_where(&m.name, |v| m.matches(v))?,
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
        for m in excluding {
            result -= match m.op {
                MatchOp::NotEqual => self.postings(&m.name, &m.value)?,
                _ => self.postings_where(&m.name, |v| !m.matches(v))?,
            };
        }
        Ok(result)
    }

    /// The labels and chunks of the series with `ordinal`.
    pub(crate) fn series(&self, ordinal: u32) -> Result<(Labels, Vec<ChunkMeta>), StorageError> {
        let offsets = self.section(SERIES_OFFSETS);
        let at = ordinal as usize * SERIES_OFFSET_LEN;
        let word = offsets.get(at..at + SERIES_OFFSET_LEN).ok_or_else(|| corrupt("series ordinal"))?;
        let mut b = [0u8; 8];
        b.copy_from_slice(word);
        let start = usize::try_from(u64::from_le_bytes(b)).map_err(|_| corrupt("series offset"))?;
        let entries = self.section(SERIES);
        let mut c = Cursor(entries.get(start..).ok_or_else(|| corrupt("series offset"))?);
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
