//! WAL records: framing (length, type, CRC32) and the payload codecs.
//!
//! Encoders append to a caller's buffer so that a whole commit is built in one reused
//! `Vec` and written with one syscall. Decoders take untrusted bytes and return an error
//! rather than panic.

use crate::labels::{Label, Labels};
use crate::metadata::{MetricMetadata, MetricType};
use crate::varint::{get_uvarint, put_uvarint, put_varint, unzigzag};

/// Bytes before a record's payload: length (4), type (1), CRC32 (4).
pub const HEADER_LEN: usize = 9;

/// Record type byte of a series record.
const TYPE_SERIES: u8 = 1;
/// Record type byte of a samples record.
const TYPE_SAMPLES: u8 = 2;
/// Record type byte of a metadata record.
const TYPE_METADATA: u8 = 3;
/// Record type byte of a tombstones record.
const TYPE_TOMBSTONES: u8 = 4;

/// Samples per samples record: keeps records near 100 KiB so a damaged one loses little,
/// while a commit of many records is still one write.
pub const MAX_SAMPLES_PER_RECORD: usize = 10_000;

/// One sample addressed by series id, its value as raw bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefSample {
    /// Series id, as given by a series record.
    pub id: u32,
    /// Timestamp in ms.
    pub t: i64,
    /// `f64::to_bits` of the value.
    pub v: u64,
}

/// A new series: its id and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry {
    /// The id samples records refer to.
    pub id: u32,
    /// The series' labels.
    pub labels: Labels,
}

/// Metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    /// Metric family name.
    pub family: String,
    /// Type, help and unit.
    pub meta: MetricMetadata,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series.
    Series(Vec<SeriesEntry>),
    /// Samples of known series.
    Samples(Vec<RefSample>),
    /// Metric metadata.
    Metadata(Vec<MetadataEntry>),
    /// Deletions: samples of a series within a time range.
    Tombstones(Vec<Tombstone>),
}

/// Samples of series `id` in `[mint, maxt]` (inclusive) are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    /// The series' WAL id.
    pub id: u32,
    /// Start of the deleted range (ms, inclusive).
    pub mint: i64,
    /// End of the deleted range (ms, inclusive).
    pub maxt: i64,
}

/// Appends one tombstones record.
pub fn encode_tombstones(buf: &mut Vec<u8>, entries: &[Tombstone]) {
    let start = begin(buf, TYPE_TOMBSTONES);
    put_uvarint(buf, entries.len() as u64);
    for e in entries {
        put_uvarint(buf, u64::from(e.id));
        put_varint(buf, e.mint);
        put_varint(buf, e.maxt);
    }
    finish(buf, start);
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The data ends inside the header or payload (a torn write).
    Torn,
    /// The checksum does not match.
    BadCrc,
    /// The checksum matches but the payload does not decode.
    Undecodable(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Torn => f.write_str("record cut short"),
            FrameError::BadCrc => f.write_str("checksum mismatch"),
            FrameError::Undecodable(why) => write!(f, "undecodable record: {why}"),
        }
    }
}

fn begin(buf: &mut Vec<u8>, kind: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0, kind, 0, 0, 0, 0]);
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - HEADER_LEN) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&buf[start..start + 5], &buf[start + HEADER_LEN..]);
    buf[start + 5..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len_and_type: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_and_type);
    h.update(payload);
    h.finalize()
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends one series record holding `series`.
pub fn encode_series<'a>(buf: &mut Vec<u8>, series: impl IntoIterator<Item = (u32, &'a Labels)>) {
    let start = begin(buf, TYPE_SERIES);
    let count_at = buf.len();
    // The count is patched in after the loop; reserve a fixed-width varint for it.
    buf.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0]);
    let mut n = 0u32;
    for (id, labels) in series {
        put_uvarint(buf, u64::from(id));
        put_uvarint(buf, labels.len() as u64);
        for l in labels {
            put_str(buf, l.name);
            put_str(buf, l.value);
        }
        n += 1;
    }
    patch_count(&mut buf[count_at..count_at + 5], n);
    finish(buf, start);
}

/// Writes `n` as a five-byte varint (continuation bits on the first four).
fn patch_count(slot: &mut [u8], n: u32) {
    for (i, b) in slot.iter_mut().enumerate() {
        let group = ((n >> (7 * i)) & 0x7f) as u8;
        *b = if i < 4 { group | 0x80 } else { group };
    }
}

/// Appends samples records for `samples`, [`MAX_SAMPLES_PER_RECORD`] per record.
pub fn encode_samples(buf: &mut Vec<u8>, samples: &[RefSample]) {
    for part in samples.chunks(MAX_SAMPLES_PER_RECORD) {
        let start = begin(buf, TYPE_SAMPLES);
        put_uvarint(buf, part.len() as u64);
        let (mut id, mut t) = (0u32, 0i64);
        for s in part {
            put_varint(buf, i64::from(s.id) - i64::from(id));
            put_varint(buf, s.t.wrapping_sub(t));
            buf.extend_from_slice(&s.v.to_le_bytes());
            (id, t) = (s.id, s.t);
        }
        finish(buf, start);
    }
}

/// Appends one metadata record.
pub fn encode_metadata(buf: &mut Vec<u8>, entries: &[MetadataEntry]) {
    let start = begin(buf, TYPE_METADATA);
    put_uvarint(buf, entries.len() as u64);
    for e in entries {
        put_str(buf, &e.family);
        buf.push(type_code(e.meta.kind));
        put_str(buf, &e.meta.help);
        put_str(buf, &e.meta.unit);
    }
    finish(buf, start);
}

fn type_code(kind: MetricType) -> u8 {
    match kind {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

fn type_from_code(code: u8) -> Option<MetricType> {
    Some(match code {
        0 => MetricType::Unknown,
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => return None,
    })
}

/// Reads the record at the front of `data`: the record and the bytes it took.
pub fn decode_frame(data: &[u8]) -> Result<(Record, usize), FrameError> {
    let header = data.get(..HEADER_LEN).ok_or(FrameError::Torn)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    let end = HEADER_LEN.checked_add(len).ok_or(FrameError::Torn)?;
    let payload = data.get(HEADER_LEN..end).ok_or(FrameError::Torn)?;
    if checksum(&header[..5], payload) != crc {
        return Err(FrameError::BadCrc);
    }
    let record = decode_payload(header[4], payload).map_err(FrameError::Undecodable)?;
    Ok((record, end))
}

/// A cursor over untrusted payload bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Result<u64, &'static str> {
        let (v, n) = get_uvarint(self.buf).ok_or("bad varint")?;
        self.buf = &self.buf[n..];
        Ok(v)
    }

    fn varint(&mut self) -> Result<i64, &'static str> {
        self.uvarint().map(unzigzag)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.buf.len() {
            return Err("field longer than the record");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| "string length overflows")?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8")
    }

    /// A count of items that each take at least `min_size` bytes, checked against what
    /// is left so that a corrupt count cannot make us allocate wildly.
    fn count(&mut self, min_size: usize) -> Result<usize, &'static str> {
        let n = self.uvarint()?;
        if n > (self.buf.len() / min_size) as u64 {
            return Err("count larger than the record");
        }
        Ok(n as usize)
    }
}

fn decode_payload(kind: u8, payload: &[u8]) -> Result<Record, &'static str> {
    let mut r = Reader { buf: payload };
    let record = match kind {
        TYPE_SERIES => {
            let n = r.count(2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let id = u32::try_from(r.uvarint()?).map_err(|_| "series id overflows u32")?;
                let nl = r.count(2)?;
                let mut labels = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = r.string()?;
                    let value = r.string()?;
                    labels.push(Label { name, value });
                }
                labels.sort();
                labels.dedup_by(|a, b| a.name == b.name);
                labels.retain(|l| !l.value.is_empty());
                out.push(SeriesEntry { id, labels: Labels::from_sorted_unchecked(labels) });
            }
            Record::Series(out)
        }
        TYPE_SAMPLES => {
            let n = r.count(10)?;
            let mut out = Vec::with_capacity(n);
            let (mut id, mut t) = (0i64, 0i64);
            for _ in 0..n {
                id = id.wrapping_add(r.varint()?);
                t = t.wrapping_add(r.varint()?);
                let v = r.bytes(8)?;
                let v = u64::from_le_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]);
                let id = u32::try_from(id).map_err(|_| "series id out of range")?;
                out.push(RefSample { id, t, v });
            }
            Record::Samples(out)
        }
        TYPE_METADATA => {
            let n = r.count(4)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let family = r.string()?;
                let kind = type_from_code(r.bytes(1)?[0]).ok_or("unknown metric type")?;
                let help = r.string()?;
                let unit = r.string()?;
                out.push(MetadataEntry { family, meta: MetricMetadata { kind, help, unit } });
            }
            Record::Metadata(out)
        }
        TYPE_TOMBSTONES => {
            let n = r.count(3)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let id = u32::try_from(r.uvarint()?).map_err(|_| "series id out of range")?;
                let mint = r.varint()?;
                let maxt = r.varint()?;
                out.push(Tombstone { id, mint, maxt });
            }
            Record::Tombstones(out)
        }
        _ => return Err("unknown record type"),
    };
    if !r.buf.is_empty() {
        return Err("trailing bytes after the payload");
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(mut data: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (r, n) = decode_frame(data).expect("valid frame");
            out.push(r);
            data = &data[n..];
        }
        out
    }

    #[test]
    fn all_kinds_roundtrip() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let b = Labels::from_pairs([("ü", "ß\n\"")]);
        let samples = vec![
            RefSample { id: 7, t: 1_000, v: crate::sample::STALE_NAN_BITS },
            RefSample { id: 3, t: -5, v: (-0.0f64).to_bits() },
            RefSample { id: u32::MAX, t: i64::MIN, v: u64::MAX },
            RefSample { id: 0, t: i64::MAX, v: 0 },
        ];
        let meta = vec![MetadataEntry {
            family: "up".into(),
            meta: MetricMetadata { kind: MetricType::Gauge, help: "Up.".into(), unit: "".into() },
        }];
        let mut buf = Vec::new();
        encode_series(&mut buf, [(1, &a), (u32::MAX, &b)]);
        encode_samples(&mut buf, &samples);
        encode_metadata(&mut buf, &meta);
        encode_series(&mut buf, std::iter::empty());
        let got = decode_all(&buf);
        assert_eq!(
            got,
            vec![
                Record::Series(vec![
                    SeriesEntry { id: 1, labels: a.clone() },
                    SeriesEntry { id: u32::MAX, labels: b.clone() }
                ]),
                Record::Samples(samples),
                Record::Metadata(meta),
                Record::Series(vec![]),
            ]
        );
    }

    #[test]
    fn big_sample_batches_split_into_records() {
        let samples: Vec<_> = (0..25_000).map(|i| RefSample { id: i % 7, t: i64::from(i), v: 1 }).collect();
        let mut buf = Vec::new();
        encode_samples(&mut buf, &samples);
        let got = decode_all(&buf);
        assert_eq!(got.len(), 3);
        let flat: Vec<_> = got
            .into_iter()
            .flat_map(|r| match r {
                Record::Samples(s) => s,
                _ => panic!("not samples"),
            })
            .collect();
        assert_eq!(flat, samples);
    }

    #[test]
    fn damage_is_detected() {
        let mut buf = Vec::new();
        encode_samples(&mut buf, &[RefSample { id: 1, t: 2, v: 3 }]);
        assert_eq!(decode_frame(&buf[..buf.len() - 1]).err(), Some(FrameError::Torn));
        assert_eq!(decode_frame(&buf[..4]).err(), Some(FrameError::Torn));
        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x10;
        assert_eq!(decode_frame(&flipped).err(), Some(FrameError::BadCrc));
        let mut long = buf.clone();
        long[0] = 0xff;
        assert!(decode_frame(&long).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), kind in 0u8..5) {
            let _ = decode_frame(&bytes);
            let _ = decode_payload(kind, &bytes);
        }
    }
}
