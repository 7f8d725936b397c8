//! The at-rest chunk encoding of blocks: byte-oriented columns made to compress well
//! with zstd (applied per frame by [`super::chunks`]).
//!
//! Timestamps are delta-of-delta varints. Values are, when that is lossless for every
//! value of the chunk, decimal-scaled integers (`v = m / 10^k`) coded as deltas or
//! deltas of deltas, whichever is shorter; otherwise XOR of consecutive bit patterns.
//! The byte layout is in `FORMAT.md` beside this file.

use super::bitpack;
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

/// Encoding tag of a chunk whose values are integers (decimal-scaled values, or raw bit
/// patterns) coded as deltas or deltas of deltas and bit-packed ([`super::bitpack`]).
/// The only encoding written since chunks file version 2; the others are still read.
const ENC_PACKED: u8 = 3;
/// Encoding tag of a chunk coded as differences from an earlier packed chunk of its frame
/// with the same timestamps and scale; only [`decode_in_frame`] reads it.
const ENC_RELATIVE: u8 = 4;
/// Scale byte of a packed chunk whose integers are the values' raw bit patterns.
const RAW_BITS: u8 = 0xFF;

/// Encodes `samples` (1..=[`MAX_CHUNK_SAMPLES`], strictly increasing timestamps) and
/// appends the bytes to `out`.
pub(crate) fn encode(samples: &[Sample], out: &mut Vec<u8>) {
    let start = out.len();
    out.push(ENC_PACKED);
    put_uvarint(out, samples.len() as u64);
    let times: Vec<i64> = samples.iter().map(|s| s.t).collect();
    put_varint(out, times[0]);
    pack_steps(&times, 1, out);
    let Scaled { k, ints, specials } = scale_of(samples).unwrap_or_else(|| Scaled {
        // Bit patterns of positive floats grow with the value, so a counter's patterns
        // step by its increment in units of the last place; any pattern round-trips.
        k: RAW_BITS,
        ints: samples.iter().map(|s| s.v.to_bits() as i64).collect(),
        specials: Vec::new(),
    });
    out.push(k);
    put_uvarint(out, specials.len() as u64);
    let mut prev = 0usize;
    for &(i, bits) in &specials {
        put_uvarint(out, (i - prev) as u64);
        put_uvarint(out, bits);
        prev = i;
    }
    put_varint(out, ints[0]);
    let g = common_step(&ints);
    put_uvarint(out, g);
    pack_steps(&ints, g, out);
    if k == RAW_BITS {
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

/// Appends the steps of `ints` (each a multiple of `g`, divided by it) bit-packed as
/// deltas or as deltas of deltas, whichever is shorter, after a mode byte. The first
/// delta of deltas is taken from zero, so both columns hold `ints.len() - 1` values.
fn pack_steps(ints: &[i64], g: u64, out: &mut Vec<u8>) {
    let deltas: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0]) / g as i64).collect();
    let mut prev = 0i64;
    let dods: Vec<i64> = deltas.iter().map(|&d| d.wrapping_sub(std::mem::replace(&mut prev, d))).collect();
    let (mut by_delta, mut by_dod) = (Vec::new(), Vec::new());
    bitpack::pack(&deltas, &mut by_delta);
    bitpack::pack(&dods, &mut by_dod);
    let (mode, column) =
        if by_dod.len() < by_delta.len() { (MODE_DOD, by_dod) } else { (MODE_DELTA, by_delta) };
    out.push(mode);
    out.extend_from_slice(&column);
}

/// Reads what [`pack_steps`] wrote and rebuilds `n` integers from the `first`.
fn unpack_steps(c: &mut Cursor<'_>, n: usize, first: i64, g: i64) -> Result<Vec<i64>, StorageError> {
    let dod = match c.byte()? {
        MODE_DELTA => false,
        MODE_DOD => true,
        _ => return Err(corrupt("unknown step mode in chunk")),
    };
    let (steps, used) = bitpack::unpack(c.buf, n - 1)?;
    c.buf = &c.buf[used..];
    let mut out = Vec::with_capacity(n);
    let (mut m, mut d) = (first, 0i64);
    out.push(m);
    for r in steps {
        d = if dod { d.wrapping_add(r) } else { r };
        m = m.wrapping_add(d.wrapping_mul(g));
        out.push(m);
    }
    Ok(out)
}

/// A packed chunk read back as integers, before they become values.
struct Packed {
    times: Vec<i64>,
    /// The scale, or [`RAW_BITS`].
    k: u8,
    specials: Vec<(usize, u64)>,
    ints: Vec<i64>,
}

impl Packed {
    fn into_samples(self) -> Vec<Sample> {
        let k = self.k;
        let mut out = samples_of(self.times, self.ints, k);
        for (i, bits) in self.specials {
            out[i].v = f64::from_bits(bits);
        }
        out
    }
}

/// Samples from timestamps and integers at scale `k` (or raw bit patterns).
fn samples_of(times: Vec<i64>, ints: Vec<i64>, k: u8) -> Vec<Sample> {
    let p = pow10(k.min(MAX_SCALE));
    times
        .into_iter()
        .zip(ints)
        .map(|(t, m)| Sample::new(t, if k == RAW_BITS { f64::from_bits(m as u64) } else { m as f64 / p }))
        .collect()
}

/// Reads a packed chunk after its tag and count.
fn parse_packed(c: &mut Cursor<'_>, n: usize) -> Result<Packed, StorageError> {
    let t0 = c.varint()?;
    let times = unpack_steps(c, n, t0, 1)?;
    let k = c.byte()?;
    if k > MAX_SCALE && k != RAW_BITS {
        return Err(corrupt("chunk decimal scale out of range"));
    }
    let count = c.uvarint()?;
    if count > n as u64 {
        return Err(corrupt("more special values than samples in chunk"));
    }
    let mut specials = Vec::with_capacity(count as usize);
    let mut at = 0u64;
    for _ in 0..count {
        at = at
            .checked_add(c.uvarint()?)
            .filter(|&i| i < n as u64)
            .ok_or_else(|| corrupt("special value index out of range in chunk"))?;
        specials.push((at as usize, c.uvarint()?));
    }
    let m0 = c.varint()?;
    let g = step(c)?;
    let ints = unpack_steps(c, n, m0, g)?;
    Ok(Packed { times, k, specials, ints })
}

/// A chunk another chunk of the same frame may be coded against: scaled integers with
/// no specials, and where it starts in its frame.
pub(crate) struct Reference {
    times: Vec<i64>,
    k: u8,
    ints: Vec<i64>,
    /// Offset of the chunk in its decompressed frame.
    pub(crate) offset: u32,
}

/// The reference `samples` make once written at `offset`, if they can be one.
pub(crate) fn reference(samples: &[Sample], offset: u32) -> Option<Reference> {
    let s = scale_of(samples).filter(|s| s.specials.is_empty())?;
    Some(Reference { times: samples.iter().map(|s| s.t).collect(), k: s.k, ints: s.ints, offset })
}

/// Encodes `samples`, to be written at `offset` in the frame, as differences from the
/// reference's values, when both share timestamps and scale; `false` (nothing written)
/// otherwise. Neighbouring buckets of a histogram differ by the few observations
/// between their bounds.
pub(crate) fn encode_relative(samples: &[Sample], r: &Reference, offset: u32, out: &mut Vec<u8>) -> bool {
    let Some(own) = scale_of(samples).filter(|s| s.specials.is_empty() && s.k == r.k) else { return false };
    if r.offset >= offset
        || r.times.len() != samples.len()
        || samples.iter().zip(&r.times).any(|(s, &t)| s.t != t)
    {
        return false;
    }
    let diffs: Vec<i64> = own.ints.iter().zip(&r.ints).map(|(m, x)| m.wrapping_sub(*x)).collect();
    out.push(ENC_RELATIVE);
    put_uvarint(out, u64::from(offset - r.offset));
    put_varint(out, diffs[0]);
    let g = common_step(&diffs);
    put_uvarint(out, g);
    pack_steps(&diffs, g, out);
    true
}

/// Decodes the chunk at `start..end` of a decompressed `frame`, following a relative
/// chunk to its reference earlier in the frame; errors, never panics, on bad input.
pub(crate) fn decode_in_frame(frame: &[u8], start: usize, end: usize) -> Result<Vec<Sample>, StorageError> {
    let bytes = frame.get(start..end).ok_or_else(|| corrupt("chunk past the end of its frame"))?;
    if bytes.first() != Some(&ENC_RELATIVE) {
        return decode(bytes);
    }
    let mut c = Cursor { buf: &bytes[1..] };
    let back = c.uvarint()?;
    let ref_start = usize::try_from(back)
        .ok()
        .filter(|&b| b > 0)
        .and_then(|b| start.checked_sub(b))
        .ok_or_else(|| corrupt("chunk reference out of its frame"))?;
    let mut r = Cursor { buf: &frame[ref_start..] };
    if r.byte()? != ENC_PACKED {
        return Err(corrupt("chunk reference is not a packed chunk"));
    }
    let n = count(&mut r)?;
    let reference = parse_packed(&mut r, n)?;
    if reference.k == RAW_BITS || !reference.specials.is_empty() {
        return Err(corrupt("chunk reference is not scaled"));
    }
    let e0 = c.varint()?;
    let g = step(&mut c)?;
    let diffs = unpack_steps(&mut c, n, e0, g)?;
    if !c.buf.is_empty() {
        return Err(corrupt("trailing bytes after chunk"));
    }
    let ints = reference.ints.iter().zip(diffs).map(|(x, e)| x.wrapping_add(e)).collect();
    Ok(samples_of(reference.times, ints, reference.k))
}

/// A chunk's sample count, checked.
fn count(c: &mut Cursor<'_>) -> Result<usize, StorageError> {
    let n = c.uvarint()?;
    if n == 0 || n > MAX_CHUNK_SAMPLES as u64 {
        return Err(corrupt("chunk sample count out of range"));
    }
    Ok(n as usize)
}

/// The largest step every delta of `ints` is a multiple of (1 when there is none or
/// the deltas are all zero): memory sizes move by pages, counters often by a fixed amount.
fn common_step(ints: &[i64]) -> u64 {
    fn gcd(mut a: u64, mut b: u64) -> u64 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    let g = ints.windows(2).fold(0u64, |g, w| gcd(g, w[1].wrapping_sub(w[0]).unsigned_abs()));
    // A step beyond i64 (only i64::MIN's magnitude) cannot divide anything usefully.
    if g == 0 || g > i64::MAX as u64 { 1 } else { g }
}

/// Most values of a chunk that no scale fits (NaNs, the staleness marker, infinities,
/// `-0.0`) listed apart so that the others can still be scaled: a series that ends
/// with a stale marker keeps its compact coding.
const MAX_SPECIALS: usize = 16;

/// Values as decimal-scaled integers.
struct Scaled {
    /// The scale: `v = m / 10^k`.
    k: u8,
    /// The integers; a special value's slot repeats the previous integer.
    ints: Vec<i64>,
    /// Positions and bit patterns of the values no scale fits.
    specials: Vec<(usize, u64)>,
}

/// The smallest decimal scale at which every value but a few specials is an exact
/// integer that divides back to the same bits; `None` when no scale up to
/// [`MAX_SCALE`] fits or there are too many specials.
fn scale_of(samples: &[Sample]) -> Option<Scaled> {
    // Non-finite values have no integer form; `-0.0` would come back as `+0.0`.
    let special = |v: f64| !v.is_finite() || v.to_bits() == (-0.0f64).to_bits();
    let specials: Vec<(usize, u64)> =
        samples.iter().enumerate().filter(|(_, s)| special(s.v)).map(|(i, s)| (i, s.v.to_bits())).collect();
    if specials.len() > MAX_SPECIALS {
        return None;
    }
    let mut ints = Vec::with_capacity(samples.len());
    'scales: for k in 0..=MAX_SCALE {
        let p = pow10(k);
        ints.clear();
        for s in samples {
            if special(s.v) {
                ints.push(ints.last().copied().unwrap_or(0));
                continue;
            }
            let m = (s.v * p).round();
            if m.abs() > MAX_EXACT_INT || (m / p).to_bits() != s.v.to_bits() {
                continue 'scales;
            }
            ints.push(m as i64);
        }
        return Some(Scaled { k, ints, specials });
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
    if enc == ENC_PACKED {
        let out = parse_packed(&mut c, n)?.into_samples();
        if !c.buf.is_empty() {
            return Err(corrupt("trailing bytes after chunk"));
        }
        return Ok(out);
    }
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
            let g = step(&mut c)?;
            let (mut m, mut q) = (0i64, 0i64);
            for (i, &t) in times.iter().enumerate() {
                let x = c.varint()?;
                if i == 0 {
                    m = x;
                } else {
                    q = if dod { q.wrapping_add(x) } else { x };
                    m = m.wrapping_add(q.wrapping_mul(g));
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

/// A chunk's common step of value deltas: positive and within `i64`.
fn step(c: &mut Cursor<'_>) -> Result<i64, StorageError> {
    i64::try_from(c.uvarint()?).ok().filter(|&g| g > 0).ok_or_else(|| corrupt("bad step in chunk"))
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

    /// The version-1 writer (scaled decimal or byte-wise XOR), kept to test that blocks
    /// written before chunks file version 2 still decode.
    fn encode_v1(samples: &[Sample], out: &mut Vec<u8>) {
        let scaled = scale_of(samples).filter(|s| s.specials.is_empty());
        out.push(if scaled.is_some() { ENC_SCALED } else { ENC_XOR });
        put_uvarint(out, samples.len() as u64);
        encode_times(samples, out);
        match scaled {
            Some(Scaled { k, ints, .. }) => {
                out.push(k);
                let g = common_step(&ints);
                let delta = int_column(&ints, g, false);
                let dod = int_column(&ints, g, true);
                let (mode, column) =
                    if dod.len() < delta.len() { (MODE_DOD, dod) } else { (MODE_DELTA, delta) };
                out.push(mode);
                out.extend_from_slice(&column);
            }
            None => {
                let mut prev = 0u64;
                for s in samples {
                    let x = s.v.to_bits() ^ prev;
                    let tz = x.trailing_zeros();
                    out.push(tz as u8);
                    if tz < 64 {
                        put_uvarint(out, x >> tz);
                    }
                    prev = s.v.to_bits();
                }
            }
        }
    }

    /// The step `g`, the first value, then the deltas divided by `g` (or the deltas of those
    /// quotients), as varints.
    fn int_column(ints: &[i64], g: u64, dod: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(ints.len() * 2);
        put_uvarint(&mut out, g);
        let g = g as i64;
        let (mut prev, mut prev_q) = (0i64, 0i64);
        for (i, &m) in ints.iter().enumerate() {
            if i == 0 {
                put_varint(&mut out, m);
            } else {
                let q = m.wrapping_sub(prev) / g;
                put_varint(&mut out, if dod { q.wrapping_sub(prev_q) } else { q });
                prev_q = q;
            }
            prev = m;
        }
        out
    }

    fn same(samples: &[Sample], back: &[Sample]) {
        let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
        let got: Vec<(i64, u64)> = back.iter().map(|s| (s.t, s.v.to_bits())).collect();
        assert_eq!(got, want);
    }

    /// Encodes with the current writer and with the version-1 writer; both must decode.
    fn roundtrip(samples: &[Sample]) -> Vec<u8> {
        let mut old = Vec::new();
        encode_v1(samples, &mut old);
        same(samples, &decode(&old).expect("decodes version 1"));
        let mut buf = Vec::new();
        encode(samples, &mut buf);
        same(samples, &decode(&buf).expect("decodes"));
        buf
    }

    /// The scale byte of a packed chunk (`None` for other encodings).
    fn scale_byte(bytes: &[u8]) -> Option<u8> {
        let mut c = Cursor { buf: bytes };
        if c.byte().ok()? != ENC_PACKED {
            return None;
        }
        let n = c.uvarint().ok()? as usize;
        let t0 = c.varint().ok()?;
        unpack_steps(&mut c, n, t0, 1).ok()?;
        c.byte().ok()
    }

    #[test]
    fn decimals_are_scaled_and_other_values_packed_as_bit_patterns() {
        let dec: Vec<Sample> =
            (0..100).map(|i| Sample::new(i * 15_000, f64::from(25 + 10 * i as i32) / 100.0)).collect();
        assert_eq!(scale_byte(&roundtrip(&dec)), Some(2), "two decimals");
        let odd = [Sample::new(1, 1.0 / 3.0), Sample::new(2, -0.0), Sample::new(3, f64::NAN)];
        roundtrip(&odd);
        // A float counter steps by its increment in units of the last place.
        let mut v = 12_345.678_9f64;
        let counter: Vec<Sample> = (0..720)
            .map(|i| {
                v += 10.0 + f64::from(i % 7) / 3.0;
                Sample::new(i64::from(i) * 15_000, v)
            })
            .collect();
        let b = roundtrip(&counter);
        assert_eq!(scale_byte(&b), Some(RAW_BITS));
        // The increments span 2^41..2^43 units of the last place: 42-bit slots.
        assert!(b.len() < 720 * 42 / 8 + 64, "{} bytes", b.len());
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
        assert!(roundtrip(&noise).len() <= 100 * 8);
        let stale = [Sample::new(1, 1.0), Sample::new(2, crate::sample::stale_nan())];
        roundtrip(&stale);
    }

    #[test]
    fn a_steady_counter_costs_next_to_nothing() {
        let counter: Vec<Sample> = (0..480).map(|i| Sample::new(i * 15_000, (i * 100) as f64)).collect();
        let len = roundtrip(&counter).len();
        assert!(len < 480 + 32, "{len}");
    }

    #[test]
    fn a_stale_marker_at_the_end_does_not_widen_the_column() {
        let mut s: Vec<Sample> =
            (0..480).map(|i| Sample::new(i * 15_000, (i * 100 + i % 3) as f64)).collect();
        let narrow = roundtrip(&s).len();
        s.push(Sample::new(480 * 15_000, crate::sample::stale_nan()));
        let with_stale = roundtrip(&s).len();
        assert!(with_stale < narrow + 24, "{narrow} → {with_stale}");
    }

    #[test]
    fn extremes_roundtrip() {
        roundtrip(&[Sample::new(i64::MIN, f64::MAX), Sample::new(i64::MAX, f64::MIN_POSITIVE)]);
        roundtrip(&[Sample::new(0, 9.007_199_254_740_993e15), Sample::new(1, -9.0e15)]);
        roundtrip(&[Sample::new(0, 1.0)]);
        let specials = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MIN, f64::MAX];
        let all: Vec<Sample> = specials
            .iter()
            .chain(&[f64::from_bits(1), f64::from_bits(u64::MAX), crate::sample::stale_nan()])
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64, v))
            .collect();
        roundtrip(&all);
    }

    /// Writes `reference` then `samples` into one frame, the second relative to the
    /// first when it can be; returns whether it was, after checking both read back.
    fn relative_roundtrip(reference: &[Sample], samples: &[Sample]) -> bool {
        let mut frame = vec![0xEE; 3];
        let r_offset = frame.len() as u32;
        encode(reference, &mut frame);
        let r_end = frame.len();
        let offset = frame.len() as u32;
        let coded = super::reference(reference, r_offset)
            .is_some_and(|r| encode_relative(samples, &r, offset, &mut frame));
        if !coded {
            encode(samples, &mut frame);
        }
        same(reference, &decode_in_frame(&frame, r_offset as usize, r_end).expect("reference decodes"));
        same(samples, &decode_in_frame(&frame, offset as usize, frame.len()).expect("decodes"));
        coded
    }

    #[test]
    fn neighbouring_buckets_code_against_each_other() {
        let t = |i: i64| i * 15_000 + 7;
        let inf: Vec<Sample> = (0..720).map(|i| Sample::new(t(i), (i * 1000 + i * i % 97) as f64)).collect();
        let le: Vec<Sample> = inf.iter().map(|s| Sample::new(s.t, s.v - (s.t % 3) as f64)).collect();
        assert!(relative_roundtrip(&inf, &le));
        let shifted: Vec<Sample> = le.iter().map(|s| Sample::new(s.t + 1, s.v)).collect();
        assert!(!relative_roundtrip(&inf, &shifted), "other timestamps");
        let halves: Vec<Sample> = le.iter().map(|s| Sample::new(s.t, s.v + 0.5)).collect();
        assert!(!relative_roundtrip(&inf, &halves), "another scale");
        let mut stale = le.clone();
        stale[719].v = crate::sample::stale_nan();
        assert!(!relative_roundtrip(&inf, &stale), "specials");
        assert!(
            decode(&{
                let mut f = Vec::new();
                encode(&inf, &mut f);
                let r = super::reference(&inf, 0).expect("reference");
                let at = f.len() as u32;
                encode_relative(&le, &r, at, &mut f);
                f.split_off(at as usize)
            })
            .is_err(),
            "a relative chunk read alone is refused, not misread"
        );
    }

    proptest! {
        #[test]
        fn relative_chunks_roundtrip(
            base in proptest::collection::vec(-1_000_000i64..1_000_000, 1..300),
            diff in proptest::collection::vec(any::<i32>(), 300),
            scale in 0i32..4,
        ) {
            let p = 10f64.powi(scale);
            let a: Vec<Sample> = base.iter().enumerate().map(|(i, &m)| Sample::new(i as i64, m as f64 / p)).collect();
            let b: Vec<Sample> =
                a.iter().zip(&diff).map(|(s, &d)| Sample::new(s.t, (s.v * p + f64::from(d)).round() / p)).collect();
            relative_roundtrip(&a, &b);
        }

        #[test]
        fn decoding_garbage_in_a_frame_never_panics(
            frame in proptest::collection::vec(any::<u8>(), 0..300),
            start in 0usize..320,
            len in 0usize..320,
            relative in any::<bool>(),
        ) {
            let mut frame = frame;
            if relative && start < frame.len() {
                frame[start] = ENC_RELATIVE;
            }
            let _ = decode_in_frame(&frame, start, start + len);
        }

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
                    let v = match (decimals, b % 3) {
                        (false, _) => f64::from_bits(b),
                        (true, 0) => (b % 100_000) as f64 / 100.0,
                        // Multiples of a page, as memory gauges move.
                        (true, _) => ((b >> 2) % 1_000_000) as f64 * 4096.0,
                    };
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
