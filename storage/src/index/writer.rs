//! Building an index file from series added in label order.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;

use roaring::RoaringBitmap;

use super::{ChunkMeta, HEADER_LEN, INDEX_MAGIC, INDEX_VERSION};
use crate::error::StorageError;
use crate::labels::Labels;
use crate::varint::{put_uvarint, put_varint};

/// Gathers series (in strictly increasing label order) and writes the index at the end.
#[derive(Default)]
pub(crate) struct IndexWriter {
    series: Vec<(Labels, Vec<ChunkMeta>)>,
}

impl IndexWriter {
    /// Adds the next series; its labels must sort after the previous series'.
    pub(crate) fn add(&mut self, labels: Labels, chunks: Vec<ChunkMeta>) -> Result<(), StorageError> {
        if self.series.last().is_some_and(|(last, _)| *last >= labels) {
            return Err(StorageError::Invalid("index series added out of label order".into()));
        }
        self.series.push((labels, chunks));
        Ok(())
    }

    /// Number of series added.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }

    /// Writes the file at `path` and fsyncs it; returns its size.
    pub(crate) fn write(self, path: &Path) -> Result<u64, StorageError> {
        let symbols: BTreeSet<&str> =
            self.series.iter().flat_map(|(l, _)| l.iter().flat_map(|x| [x.name, x.value])).collect();
        let sym_ref: BTreeMap<&str, u64> = symbols.iter().enumerate().map(|(i, s)| (*s, i as u64)).collect();

        let mut sections: Vec<Vec<u8>> = Vec::with_capacity(super::SECTIONS);
        let mut sym = Vec::new();
        put_uvarint(&mut sym, symbols.len() as u64);
        for s in &symbols {
            put_uvarint(&mut sym, s.len() as u64);
            sym.extend_from_slice(s.as_bytes());
        }
        sections.push(sym);

        let mut series = Vec::new();
        let mut offsets = Vec::with_capacity(self.series.len() * super::SERIES_OFFSET_LEN);
        let mut postings: BTreeMap<(&str, &str), RoaringBitmap> = BTreeMap::new();
        for (ordinal, (labels, chunks)) in self.series.iter().enumerate() {
            offsets.extend_from_slice(&(series.len() as u64).to_le_bytes());
            put_uvarint(&mut series, labels.len() as u64);
            for l in labels {
                put_uvarint(&mut series, sym_ref[l.name]);
                put_uvarint(&mut series, sym_ref[l.value]);
                postings.entry((l.name, l.value)).or_default().insert(ordinal as u32);
            }
            put_uvarint(&mut series, chunks.len() as u64);
            let mut prev_max = 0i64;
            for (i, c) in chunks.iter().enumerate() {
                put_varint(&mut series, if i == 0 { c.min_t } else { c.min_t.wrapping_sub(prev_max) });
                put_uvarint(&mut series, c.max_t.wrapping_sub(c.min_t) as u64);
                put_uvarint(&mut series, c.loc.frame);
                put_uvarint(&mut series, u64::from(c.loc.offset));
                put_uvarint(&mut series, u64::from(c.loc.len));
                prev_max = c.max_t;
            }
        }
        sections.push(series);
        sections.push(offsets);

        let mut lists = Vec::new();
        let mut table = Vec::new();
        put_uvarint(&mut table, postings.len() as u64);
        for ((name, value), ids) in &postings {
            let start = lists.len();
            ids.serialize_into(&mut lists).map_err(|e| StorageError::io("encoding postings", e))?;
            put_uvarint(&mut table, sym_ref[name]);
            put_uvarint(&mut table, sym_ref[value]);
            put_uvarint(&mut table, start as u64);
            put_uvarint(&mut table, (lists.len() - start) as u64);
        }
        sections.push(lists);
        sections.push(table);

        let mut out = Vec::with_capacity(sections.iter().map(Vec::len).sum::<usize>() + 256);
        out.extend_from_slice(&INDEX_MAGIC);
        out.push(INDEX_VERSION);
        out.resize(HEADER_LEN, 0);
        let mut toc = Vec::new();
        for s in &sections {
            toc.extend_from_slice(&(out.len() as u64).to_le_bytes());
            toc.extend_from_slice(&(s.len() as u64).to_le_bytes());
            toc.extend_from_slice(&crc32fast::hash(s).to_le_bytes());
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&toc);
        out.extend_from_slice(&INDEX_MAGIC);

        let mut file =
            File::create(path).map_err(|e| StorageError::io(format!("creating {}", path.display()), e))?;
        file.write_all(&out)
            .and_then(|()| file.sync_all())
            .map_err(|e| StorageError::io(format!("writing {}", path.display()), e))?;
        Ok(out.len() as u64)
    }
}
