//! The XOR chunk: delta-of-delta timestamps and XOR-compressed values in one bit stream.
//!
//! See `FORMAT.md` for the byte layout. All timestamp arithmetic wraps, so any strictly
//! increasing sequence of `i64` timestamps round-trips, and a decoder fed arbitrary bytes
//! cannot overflow.

use std::sync::Arc;

use super::ChunkError;
use super::bits::{BitReader, BitWriter};
use super::sink::ChunkBytes;
use crate::sample::Sample;
use crate::varint::{unzigzag, zigzag};

/// Bytes before the bit stream: the sample count as a big-endian `u16`.
const HEADER_LEN: usize = 2;

/// Widths of the signed delta-of-delta buckets after the `10`, `110` and `1110`
/// prefixes: 6 bits (±32 ms) holds the jitter of a scrape loop in one byte with its
/// prefix, 16 bits a missed 15s or 30s scrape, 24 bits a pause of hours; anything else
/// is written in full after `1111`. Chosen on the chunk bench's jittered 15s series.
const DOD_WIDTHS: [u32; 3] = [6, 16, 24];

/// Bits of the leading-zero count in a new XOR window (counts above 31 are clamped).
const LEADING_BITS: u32 = 5;

/// Largest leading-zero count [`LEADING_BITS`] can hold.
const MAX_LEADING: u32 = (1 << LEADING_BITS) - 1;

/// Bits of the significant-bit count in a new XOR window (64 is written as 0).
const SIG_BITS: u32 = 6;

/// Marks "no XOR window yet" in the leading-zero state.
const NO_WINDOW: u32 = u32::MAX;

/// [`NO_WINDOW`] in the encoder's one-byte state.
const NO_WINDOW_BYTE: u8 = u8::MAX;

/// An immutable encoded chunk; cloning shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XorChunk {
    bytes: Arc<[u8]>,
}

impl XorChunk {
    /// Wraps encoded bytes (e.g. read from disk); iterating them never panics, whatever
    /// they hold. Fails only when the header is missing.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Result<Self, ChunkError> {
        let bytes = bytes.into();
        if bytes.len() < HEADER_LEN {
            return Err(ChunkError::Corrupt("shorter than its header"));
        }
        Ok(XorChunk { bytes })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A chunk without samples.
    pub fn empty() -> Self {
        XorChunk { bytes: Arc::from(&[0u8; HEADER_LEN][..]) }
    }

    /// Number of samples the header announces.
    pub fn num_samples(&self) -> usize {
        usize::from(u16::from_be_bytes([self.bytes[0], self.bytes[1]]))
    }

    /// An iterator over the samples.
    pub fn iter(&self) -> XorIter {
        XorIter::new(self.bytes.clone())
    }
}

/// Chunks up to this size are copied out through a stack buffer (head chunks are cut
/// near 1 KiB).
const STACK_COPY_LEN: usize = 2048;

/// Builds a chunk by appending samples with strictly increasing timestamps, into a
/// vector by default or into any other [`ChunkBytes`] (the head's never-moving
/// segments).
#[derive(Debug, Clone)]
pub struct XorEncoder<B = Vec<u8>> {
    bytes: B,
    w: BitWriter,
    count: u16,
    t: i64,
    delta: i64,
    v: u64,
    /// The XOR window as leading and trailing zero counts (bytes: a million open
    /// chunks live at once).
    leading: u8,
    trailing: u8,
}

impl<B: ChunkBytes> Default for XorEncoder<B> {
    fn default() -> Self {
        let mut bytes = B::default();
        for _ in 0..HEADER_LEN {
            bytes.push(0);
        }
        XorEncoder {
            bytes,
            w: BitWriter::new(),
            count: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: NO_WINDOW_BYTE,
            trailing: 0,
        }
    }
}

impl XorEncoder {
    /// An empty chunk in a vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded bytes so far (a valid chunk at every point).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<B: ChunkBytes> XorEncoder<B> {
    /// Samples appended so far.
    pub fn num_samples(&self) -> usize {
        usize::from(self.count)
    }

    /// Encoded size so far in bytes.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Timestamp of the first sample, if any, read back from the bytes (the head does
    /// not keep a copy of it for each of its open chunks).
    pub fn first_t(&self) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        // The header and a varint fit the contiguous prefix of any buffer.
        BitReader::at_byte(HEADER_LEN).uvarint(self.bytes.prefix()).map(unzigzag)
    }

    /// Calls `f` with the chunk as it stands in one contiguous slice, copied through
    /// the stack when the buffer is not contiguous.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let header = self.count.to_be_bytes();
        if let Some(b) = self.bytes.as_contiguous()
            && b.get(..HEADER_LEN) == Some(&header[..])
        {
            return f(b);
        }
        let len = self.bytes.len();
        let mut stack = [0u8; STACK_COPY_LEN];
        let mut heap = Vec::new();
        let out = if len <= STACK_COPY_LEN {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap[..]
        };
        self.bytes.copy_to(out);
        out[..HEADER_LEN].copy_from_slice(&header);
        f(out)
    }

    /// Timestamp of the last sample, if any.
    pub fn last_t(&self) -> Option<i64> {
        (self.count > 0).then_some(self.t)
    }

    /// Appends a sample; `t` must be after the previous sample's timestamp. The value is
    /// stored bit for bit (any NaN payload, `-0.0`, infinities).
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        if self.count == u16::MAX {
            return Err(ChunkError::Full);
        }
        if self.count > 0 && t <= self.t {
            return Err(ChunkError::NotIncreasing { t, last: self.t });
        }
        let bits = v.to_bits();
        let out = &mut self.bytes;
        match self.count {
            0 => {
                put_uvarint_bits(&mut self.w, out, zigzag(t));
                self.w.bits(out, bits, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                put_uvarint_bits(&mut self.w, out, delta as u64);
                self.delta = delta;
                self.write_value(bits);
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                self.write_dod(delta.wrapping_sub(self.delta));
                self.delta = delta;
                self.write_value(bits);
            }
        }
        self.t = t;
        self.v = bits;
        self.count += 1;
        self.bytes.set_header(self.count.to_be_bytes());
        Ok(())
    }

    fn write_dod(&mut self, dod: i64) {
        let out = &mut self.bytes;
        if dod == 0 {
            self.w.bit(out, false);
            return;
        }
        for (i, &width) in DOD_WIDTHS.iter().enumerate() {
            let half = 1i64 << (width - 1);
            if (-half..half).contains(&dod) {
                // Prefix: i+1 ones then a zero.
                let ones = i as u32 + 1;
                self.w.bits(out, ((1u64 << ones) - 1) << 1, ones + 1);
                self.w.bits(out, dod as u64 & ((1u64 << width) - 1), width);
                return;
            }
        }
        self.w.bits(out, 0b1111, 4);
        self.w.bits(out, dod as u64, 64);
    }

    fn write_value(&mut self, bits: u64) {
        let out = &mut self.bytes;
        let x = bits ^ self.v;
        if x == 0 {
            self.w.bit(out, false);
            return;
        }
        self.w.bit(out, true);
        let leading = x.leading_zeros().min(MAX_LEADING);
        let trailing = x.trailing_zeros();
        let (prev_leading, prev_trailing) = (u32::from(self.leading), u32::from(self.trailing));
        if self.leading != NO_WINDOW_BYTE && leading >= prev_leading && trailing >= prev_trailing {
            // The meaningful bits fit in the previous window: reuse it.
            self.w.bit(out, false);
            let sig = 64 - prev_leading - prev_trailing;
            self.w.bits(out, x >> prev_trailing, sig);
            return;
        }
        // Both counts are at most 64 (leading at most MAX_LEADING): they fit a byte.
        self.leading = leading as u8;
        self.trailing = trailing as u8;
        let sig = 64 - leading - trailing;
        self.w.bit(out, true);
        self.w.bits(out, u64::from(leading), LEADING_BITS);
        self.w.bits(out, u64::from(sig & 63), SIG_BITS);
        self.w.bits(out, x >> trailing, sig);
    }

    /// A copy of the chunk as it stands, for readers while appends continue.
    pub fn snapshot(&self) -> XorChunk {
        self.with_bytes(|b| XorChunk { bytes: Arc::from(b) })
    }

    /// The finished chunk.
    pub fn finish(self) -> XorChunk {
        self.snapshot()
    }
}

fn put_uvarint_bits<B: ChunkBytes>(w: &mut BitWriter, out: &mut B, mut v: u64) {
    while v >= 0x80 {
        w.bits(out, (v & 0x7f) | 0x80, 8);
        v >>= 7;
    }
    w.bits(out, v, 8);
}

/// Reads a chunk's samples in order. On malformed bytes it stops and records why in
/// [`XorIter::error`]; it never panics.
pub struct XorIter {
    bytes: Arc<[u8]>,
    r: BitReader,
    total: u16,
    read: u16,
    t: i64,
    delta: i64,
    v: u64,
    leading: u32,
    trailing: u32,
    err: Option<ChunkError>,
}

impl XorIter {
    /// Iterates encoded bytes from any source.
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        let (total, err) = match bytes.get(..HEADER_LEN) {
            Some(h) => (u16::from_be_bytes([h[0], h[1]]), None),
            None => (0, Some(ChunkError::Corrupt("shorter than its header"))),
        };
        XorIter {
            bytes,
            r: BitReader::at_byte(HEADER_LEN),
            total,
            read: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: NO_WINDOW,
            trailing: 0,
            err,
        }
    }

    /// Why iteration stopped early, if the bytes were malformed.
    pub fn error(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    /// Skips to the first sample at or after `t` and returns it (consumed, like `next`).
    pub fn seek(&mut self, t: i64) -> Option<Sample> {
        loop {
            let s = self.next()?;
            if s.t >= t {
                return Some(s);
            }
        }
    }

    fn decode(&mut self) -> Result<Sample, ChunkError> {
        const TRUNCATED: ChunkError = ChunkError::Corrupt("bit stream ends before its samples");
        let buf: &[u8] = &self.bytes;
        let r = &mut self.r;
        match self.read {
            0 => {
                self.t = unzigzag(r.uvarint(buf).ok_or(TRUNCATED)?);
                self.v = r.bits(buf, 64).ok_or(TRUNCATED)?;
            }
            1 => {
                self.delta = r.uvarint(buf).ok_or(TRUNCATED)? as i64;
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
            _ => {
                let mut ones = 0;
                while ones < 4 && r.bit(buf).ok_or(TRUNCATED)? {
                    ones += 1;
                }
                let dod = match ones {
                    0 => 0,
                    4 => r.bits(buf, 64).ok_or(TRUNCATED)? as i64,
                    n => {
                        let width = DOD_WIDTHS[n - 1];
                        let raw = r.bits(buf, width).ok_or(TRUNCATED)?;
                        // Sign-extend from `width` bits.
                        ((raw << (64 - width)) as i64) >> (64 - width)
                    }
                };
                self.delta = self.delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
        }
        Ok(Sample::new(self.t, f64::from_bits(self.v)))
    }

    fn read_value(&mut self) -> Result<(), ChunkError> {
        const TRUNCATED: ChunkError = ChunkError::Corrupt("bit stream ends inside a value");
        let buf: &[u8] = &self.bytes;
        let r = &mut self.r;
        if !r.bit(buf).ok_or(TRUNCATED)? {
            return Ok(());
        }
        if r.bit(buf).ok_or(TRUNCATED)? {
            let leading = r.bits(buf, LEADING_BITS).ok_or(TRUNCATED)? as u32;
            let sig = match r.bits(buf, SIG_BITS).ok_or(TRUNCATED)? as u32 {
                0 => 64,
                s => s,
            };
            if leading + sig > 64 {
                return Err(ChunkError::Corrupt("XOR window wider than 64 bits"));
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
        } else if self.leading == NO_WINDOW {
            return Err(ChunkError::Corrupt("XOR window reused before one was set"));
        }
        let sig = 64 - self.leading - self.trailing;
        let x = r.bits(buf, sig).ok_or(TRUNCATED)?;
        self.v ^= x << self.trailing;
        Ok(())
    }
}

impl Iterator for XorIter {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.err.is_some() || self.read >= self.total {
            return None;
        }
        match self.decode() {
            Ok(s) => {
                self.read += 1;
                Some(s)
            }
            Err(e) => {
                self.err = Some(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, u64)]) -> XorChunk {
        let mut e = XorEncoder::new();
        for &(t, v) in samples {
            e.append(t, f64::from_bits(v)).expect("increasing timestamps");
        }
        e.finish()
    }

    fn decode(c: &XorChunk) -> Vec<(i64, u64)> {
        let mut it = c.iter();
        let got: Vec<_> = it.by_ref().map(|s| (s.t, s.v.to_bits())).collect();
        assert_eq!(it.error(), None);
        got
    }

    #[test]
    fn special_values_roundtrip_bit_exactly() {
        let specials = [
            STALE_NAN_BITS,
            f64::NAN.to_bits(),
            0x7ff8_dead_beef_0001,
            0xfff0_0000_0000_0001,
            (-0.0f64).to_bits(),
            0.0f64.to_bits(),
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            1,
            u64::MAX,
        ];
        let samples: Vec<_> = specials.iter().enumerate().map(|(i, &v)| (i as i64 * 15_000, v)).collect();
        assert_eq!(decode(&encode(&samples)), samples);
    }

    #[test]
    fn extreme_timestamps_roundtrip() {
        let samples = vec![(i64::MIN, 1), (-1, 2), (0, 3), (1, 4), (i64::MAX - 1, 5), (i64::MAX, 6)];
        assert_eq!(decode(&encode(&samples)), samples);
    }

    #[test]
    fn refuses_non_increasing_timestamps() {
        let mut e = XorEncoder::new();
        e.append(10, 1.0).expect("first");
        assert_eq!(e.append(10, 1.0), Err(ChunkError::NotIncreasing { t: 10, last: 10 }));
        assert_eq!(e.append(9, 1.0), Err(ChunkError::NotIncreasing { t: 9, last: 10 }));
        assert_eq!(e.num_samples(), 1);
    }

    #[test]
    fn seek_finds_first_at_or_after() {
        let samples: Vec<_> = (0..120).map(|i| (i * 10, (i as f64).to_bits())).collect();
        let c = encode(&samples);
        let mut it = c.iter();
        assert_eq!(it.seek(55).map(|s| s.t), Some(60));
        assert_eq!(it.next().map(|s| s.t), Some(70));
        assert_eq!(it.seek(0).map(|s| s.t), Some(80));
        assert_eq!(it.seek(2000), None);
    }

    #[test]
    fn snapshot_is_valid_mid_stream() {
        let mut e = XorEncoder::new();
        for i in 0..50 {
            e.append(i * 1000, i as f64 * 0.5).expect("append");
            assert_eq!(e.snapshot().iter().count(), i as usize + 1);
        }
    }

    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        let gap = prop_oneof![
            Just(1i64),
            1i64..100,
            14_990i64..15_010,
            1i64..10_000_000,
            1i64..(1 << 40),
            1i64..i64::MAX / 300,
        ];
        (-(1i64 << 50)..(1i64 << 50), prop::collection::vec(gap, 0..300)).prop_map(|(start, gaps)| {
            let mut t = start;
            let mut out = vec![t];
            for g in gaps {
                t = t.saturating_add(g);
                if t == *out.last().expect("non-empty") {
                    break;
                }
                out.push(t);
            }
            out
        })
    }

    fn values() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            Just(STALE_NAN_BITS),
            Just((-0.0f64).to_bits()),
            Just(f64::INFINITY.to_bits()),
            (0u64..1000).prop_map(|i| (i as f64).to_bits()),
            (-1e6f64..1e6).prop_map(f64::to_bits),
        ]
    }

    proptest! {
        #[test]
        fn roundtrips_any_bits_and_timestamps(
            ts in timestamps(),
            vs in prop::collection::vec(values(), 301),
        ) {
            let samples: Vec<_> = ts.iter().zip(vs).map(|(&t, v)| (t, v)).collect();
            let c = encode(&samples);
            prop_assert_eq!(c.num_samples(), samples.len());
            prop_assert_eq!(decode(&c), samples);
        }

        #[test]
        fn segments_hold_the_same_chunk_as_a_vector(
            ts in timestamps(),
            vs in prop::collection::vec(values(), 301),
        ) {
            let mut flat = XorEncoder::new();
            let mut segmented = XorEncoder::<crate::chunk::SegmentedBytes>::default();
            for (&t, &v) in ts.iter().zip(&vs) {
                flat.append(t, f64::from_bits(v)).expect("increasing");
                segmented.append(t, f64::from_bits(v)).expect("increasing");
                prop_assert_eq!(segmented.first_t(), flat.first_t());
            }
            prop_assert_eq!(segmented.len_bytes(), flat.len_bytes());
            prop_assert_eq!(segmented.with_bytes(<[u8]>::to_vec), flat.as_bytes().to_vec());
            prop_assert_eq!(segmented.snapshot(), flat.snapshot());
            prop_assert_eq!(segmented.finish(), flat.finish());
        }

        #[test]
        fn first_timestamp_reads_back_from_the_bytes(ts in timestamps()) {
            let mut e = XorEncoder::new();
            prop_assert_eq!(e.first_t(), None);
            for &t in &ts {
                e.append(t, 1.0).expect("increasing");
                prop_assert_eq!(e.first_t(), ts.first().copied());
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), seek in any::<i64>()) {
            let n = XorIter::new(bytes.clone()).count();
            prop_assert!(n <= 0xffff);
            let _ = XorIter::new(bytes.clone()).seek(seek);
            let _ = XorChunk::from_bytes(bytes).map(|c| c.iter().count());
        }

        #[test]
        fn truncated_chunks_end_with_an_error(cut in 0usize..200) {
            let samples: Vec<_> = (0..120).map(|i| (i * 15_000 + i % 3, (i as f64 * 1.7).to_bits())).collect();
            let c = encode(&samples);
            let cut = cut.min(c.as_bytes().len() - 1);
            let mut it = XorIter::new(&c.as_bytes()[..cut]);
            let got: Vec<_> = it.by_ref().map(|s| (s.t, s.v.to_bits())).collect();
            prop_assert!(got.len() < samples.len());
            prop_assert_eq!(&got[..], &samples[..got.len()]);
            prop_assert!(it.error().is_some());
        }
    }
}
