//! The at-rest chunk encoding of blocks: byte-oriented columns made to compress well
//! with zstd (applied per frame by [`super::chunks`]).
//!
//! Timestamps are delta-of-delta varints. Values are, when that is lossless for every
//! value of the chunk, decimal-scaled integers (`v = m / 10^k`) coded as deltas or
//! deltas of deltas, whichever is shorter; otherwise XOR of consecutive bit patterns.
//! The byte layout is in `FORMAT.md` beside this file.

use crate::error::StorageError;
use crate::sample::Sample;
use crate::varint::{get_uvarint, put_uvarint, put_varint, unzigzag};

/// Most samples one block chunk holds: bounds the decode work of a seek and the
/// allocation a corrupt count could ask for, while keeping per-chunk overhead small.
pub(crate) const MAX_CHUNK_SAMPLES: usize = 1920;

/// Largest decimal scale tried: 10^12 keeps `m` within 2^53 for values up to ~9000 at
/// twelve decimals, and more digits than that are rarely exact decimals anyway.
const MAX_SCALE: u8 = 12;

/// Largest scaled integer magnitude: every integer up to 2^53 is exact in an `f64`.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Encoding tag of a chunk whose values are decimal-scaled integers.
const ENC_SCALED: u8 = 0;
/// Encoding tag of a chunk whose values are XORed bit patterns.
const ENC_XOR: u8 = 1;
/// Encoding tag of a chunk stored as a head XOR chunk (Gorilla bit stream), used when
/// it is shorter than [`ENC_XOR`] (values with no pattern a byte-aligned code can use).
const ENC_GORILLA: u8 = 2;

/// Value-coding mode of a scaled chunk: deltas of consecutive integers.
const MODE_DELTA: u8 = 0;
/// Value-coding mode of a scaled chunk: deltas of deltas (steady counters).
const MODE_DOD: u8 = 1;

/// Powers of ten `10^0 ..= 10^MAX_SCALE`, all exact in an `f64`.
fn pow10(k: u8) -> f64 {
    10f64.powi(i32::from(k))
}

/// Encodes `samples` (1..=[`MAX_CHUNK_SAMPLES`], strictly increasing timestamps) and
/// appends the bytes to `out`.
pub(crate) fn encode(samples: &[Sample], out: &mut Vec<u8>) {
    let start = out.len();
    let scaled = scale_of(samples);
    let is_xor = scaled.is_none();
    out.push(if scaled.is_some() { ENC_SCALED } else { ENC_XOR });
    put_uvarint(out, samples.len() as u64);
    encode_times(samples, out);
    match scaled {
        Some((k, ints)) => {
            out.push(k);
            let delta = int_column(&ints, false);
            let dod = int_column(&ints, true);
            if dod.len() < delta.len() {
                out.push(MODE_DOD);
                out.extend_from_slice(&dod);
            } else {
                out.push(MODE_DELTA);
                out.extend_from_slice(&delta);
            }
        }
        None => {
            let mut prev = 0u64;
            for s in samples {
                let bits = s.v.to_bits();
                let x = bits ^ prev;
                // Trailing zeros first, then the rest shifted down: short decimal
                // mantissas and equal exponents leave few significant bits.
                let tz = x.trailing_zeros();
                out.push(tz as u8);
                if tz < 64 {
                    put_uvarint(out, x >> tz);
                }
                prev = bits;
            }
        }
    }
    if is_xor {
        let mut gorilla = crate::chunk::XorEncoder::new();
        // Cannot fail: at most MAX_CHUNK_SAMPLES (< u16::MAX) increasing timestamps.
        let fits = samples.iter().all(|s| gorilla.append(s.t, s.v).is_ok());
        if fits && 1 + gorilla.len_bytes() < out.len() - start {
            out.truncate(start);
            out.push(ENC_GORILLA);
            out.extend_from_slice(gorilla.as_bytes());
        }
    }
}

fn encode_times(samples: &[Sample], out: &mut Vec<u8>) {
    let (mut prev_t, mut prev_d) = (0i64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        match i {
            0 => put_varint(out, s.t),
            1 => {
                prev_d = s.t.wrapping_sub(prev_t);
                put_varint(out, prev_d);
            }
            _ => {
                let d = s.t.wrapping_sub(prev_t);
                put_varint(out, d.wrapping_sub(prev_d));
                prev_d = d;
            }
        }
        prev_t = s.t;
    }
}

/// The first value, then deltas (or deltas of deltas) of the rest, as zigzag varints.
fn int_column(ints: &[i64], dod: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(ints.len() * 2);
    let (mut prev, mut prev_d) = (0i64, 0i64);
    for (i, &m) in ints.iter().enumerate() {
        if i == 0 {
            put_varint(&mut out, m);
        } else {
            let d = m.wrapping_sub(prev);
            put_varint(&mut out, if dod { d.wrapping_sub(prev_d) } else { d });
            prev_d = d;
        }
        prev = m;
    }
    out
}

/// The smallest decimal scale at which every value is an exact integer that divides back
/// to the same bits, with those integers; `None` when no scale up to [`MAX_SCALE`] is.
fn scale_of(samples: &[Sample]) -> Option<(u8, Vec<i64>)> {
    let mut ints = Vec::with_capacity(samples.len());
    'scales: for k in 0..=MAX_SCALE {
        let p = pow10(k);
        ints.clear();
        for s in samples {
            // Non-finite values have no integer form; `-0.0` would come back as `+0.0`.
            if !s.v.is_finite() || s.v.to_bits() == (-0.0f64).to_bits() {
                return None;
            }
            let m = (s.v * p).round();
            if m.abs() > MAX_EXACT_INT || (m / p).to_bits() != s.v.to_bits() {
                continue 'scales;
            }
            ints.push(m as i64);
        }
        return Some((k, ints));
    }
    None
}

/// Reads bytes front to back, failing (never panicking) when they run out.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, StorageError> {
        let (&b, rest) = self.buf.split_first().ok_or_else(|| corrupt("chunk ends early"))?;
        self.buf = rest;
        Ok(b)
    }

    fn uvarint(&mut self) -> Result<u64, StorageError> {
        let (v, n) = get_uvarint(self.buf).ok_or_else(|| corrupt("bad varint in chunk"))?;
        self.buf = &self.buf[n..];
        Ok(v)
    }

    fn varint(&mut self) -> Result<i64, StorageError> {
        self.uvarint().map(unzigzag)
    }
}

fn corrupt(why: &str) -> StorageError {
    StorageError::Corrupt(why.to_string())
}

/// Decodes one chunk; errors on any malformed input, never panics.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Sample>, StorageError> {
    if bytes.first() == Some(&ENC_GORILLA) {
        return decode_gorilla(&bytes[1..]);
    }
    let mut c = Cursor { buf: bytes };
    let enc = c.byte()?;
    let n = c.uvarint()?;
    if n == 0 || n > MAX_CHUNK_SAMPLES as u64 {
        return Err(corrupt("chunk sample count out of range"));
    }
    let n = n as usize;
    let mut times = Vec::with_capacity(n);
    let (mut t, mut d) = (0i64, 0i64);
    for i in 0..n {
        let x = c.varint()?;
        match i {
            0 => t = x,
            1 => {
                d = x;
                t = t.wrapping_add(d);
            }
            _ => {
                d = d.wrapping_add(x);
                t = t.wrapping_add(d);
            }
        }
        times.push(t);
    }
    let mut out = Vec::with_capacity(n);
    match enc {
        ENC_SCALED => {
            let k = c.byte()?;
            if k > MAX_SCALE {
                return Err(corrupt("chunk decimal scale out of range"));
            }
            let p = pow10(k);
            let dod = match c.byte()? {
                MODE_DELTA => false,
                MODE_DOD => true,
                _ => return Err(corrupt("unknown value mode in chunk")),
            };
            let (mut m, mut d) = (0i64, 0i64);
            for (i, &t) in times.iter().enumerate() {
                let x = c.varint()?;
                if i == 0 {
                    m = x;
                } else {
                    d = if dod { d.wrapping_add(x) } else { x };
                    m = m.wrapping_add(d);
                }
                out.push(Sample::new(t, m as f64 / p));
            }
        }
        ENC_XOR => {
            let mut prev = 0u64;
            for &t in &times {
                let tz = c.byte()?;
                let x = match tz {
                    64 => 0,
                    0..64 => c.uvarint()?.checked_shl(u32::from(tz)).unwrap_or(0),
                    _ => return Err(corrupt("bad XOR shift in chunk")),
                };
                prev ^= x;
                out.push(Sample::new(t, f64::from_bits(prev)));
            }
        }
        _ => return Err(corrupt("unknown chunk encoding")),
    }
    if !c.buf.is_empty() {
        return Err(corrupt("trailing bytes after chunk"));
    }
    Ok(out)
}

fn decode_gorilla(bytes: &[u8]) -> Result<Vec<Sample>, StorageError> {
    let chunk = crate::chunk::XorChunk::from_bytes(bytes).map_err(|e| corrupt_owned(e.to_string()))?;
    let n = chunk.num_samples();
    if n == 0 || n > MAX_CHUNK_SAMPLES {
        return Err(corrupt("chunk sample count out of range"));
    }
    let mut it = chunk.iter();
    let out: Vec<Sample> = it.by_ref().collect();
    if out.len() != n || it.error().is_some() {
        return Err(corrupt("damaged XOR chunk"));
    }
    Ok(out)
}

fn corrupt_owned(why: String) -> StorageError {
    StorageError::Corrupt(why)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn roundtrip(samples: &[Sample]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(samples, &mut buf);
        let back = decode(&buf).expect("decodes");
        let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
        let got: Vec<(i64, u64)> = back.iter().map(|s| (s.t, s.v.to_bits())).collect();
        assert_eq!(got, want);
        buf
    }

    #[test]
    fn decimals_use_the_scaled_encoding_and_odd_values_xor() {
        let dec: Vec<Sample> =
            (0..100).map(|i| Sample::new(i * 15_000, f64::from(25 + 10 * i as i32) / 100.0)).collect();
        assert_eq!(roundtrip(&dec)[0], ENC_SCALED);
        let odd = [Sample::new(1, 1.0 / 3.0), Sample::new(2, -0.0), Sample::new(3, f64::NAN)];
        assert_ne!(roundtrip(&odd)[0], ENC_SCALED);
        let noise: Vec<Sample> = (0..100)
            .map(|i| {
                Sample::new(
                    i * 15_000,
                    f64::from_bits(
                        0x3ff0_0000_0000_0000 | (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 12,
                    ),
                )
            })
            .collect();
        assert_eq!(roundtrip(&noise)[0], ENC_GORILLA);
        let stale = [Sample::new(1, 1.0), Sample::new(2, crate::sample::stale_nan())];
        assert_ne!(roundtrip(&stale)[0], ENC_SCALED);
    }

    #[test]
    fn a_steady_counter_costs_about_a_byte_per_sample_before_zstd() {
        let counter: Vec<Sample> = (0..480).map(|i| Sample::new(i * 15_000, (i * 100) as f64)).collect();
        let len = roundtrip(&counter).len();
        assert!(len < 2 * 480 + 16, "{len}");
    }

    #[test]
    fn extremes_roundtrip() {
        roundtrip(&[Sample::new(i64::MIN, f64::MAX), Sample::new(i64::MAX, f64::MIN_POSITIVE)]);
        roundtrip(&[Sample::new(0, 9.007_199_254_740_993e15), Sample::new(1, -9.0e15)]);
    }

    proptest! {
        #[test]
        fn any_bits_roundtrip(
            mut ts in proptest::collection::btree_set(any::<i64>(), 1..200),
            bits in proptest::collection::vec(any::<u64>(), 200),
            decimals in any::<bool>(),
        ) {
            let ts: Vec<i64> = std::mem::take(&mut ts).into_iter().collect();
            let samples: Vec<Sample> = ts
                .iter()
                .zip(&bits)
                .map(|(&t, &b)| {
                    let v = if decimals { (b % 100_000) as f64 / 100.0 } else { f64::from_bits(b) };
                    Sample::new(t, v)
                })
                .collect();
            roundtrip(&samples);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
