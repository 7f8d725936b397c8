//! Frame-of-reference bit packing of an integer column, with exceptions: every value is
//! stored as its offset from the column's smallest kept value in a fixed number of bits,
//! and the few outliers that would widen every slot (a first delta from zero, a
//! staleness marker's bit pattern) are listed apart. Random increments of counters and
//! gauges pack to within a bit of their entropy, where varints waste the high bits of
//! every byte. Layout in `FORMAT.md` beside this file.

use crate::error::StorageError;
use crate::varint::{get_uvarint, put_uvarint, put_varint, unzigzag};

/// Most outliers tried at each end of the sorted column: enough for a first delta and a
/// stale marker, few enough that choosing stays cheap.
const MAX_OUTLIERS: usize = 8;
/// Estimated bytes of one exception (an index gap and a wide varint), for choosing.
const EXCEPTION_COST: usize = 8;
/// Widest slot: a full 64-bit offset.
const MAX_WIDTH: u8 = 64;

/// Appends `values` packed to `out`.
pub(crate) fn pack(values: &[i64], out: &mut Vec<u8>) {
    let (base, width) = choose(values);
    let top = if width == 0 { 0 } else { u64::MAX >> (64 - u32::from(width)) };
    let fits = |v: i64| v >= base && (v.wrapping_sub(base) as u64) <= top;
    put_varint(out, base);
    out.push(width);
    let exceptions: Vec<(usize, i64)> =
        values.iter().copied().enumerate().filter(|&(_, v)| !fits(v)).collect();
    put_uvarint(out, exceptions.len() as u64);
    let mut prev = 0usize;
    for &(i, v) in &exceptions {
        put_uvarint(out, (i - prev) as u64);
        put_varint(out, v);
        prev = i;
    }
    let (mut acc, mut bits) = (0u128, 0u32);
    for &v in values {
        let slot = if fits(v) { v.wrapping_sub(base) as u64 } else { 0 };
        acc |= u128::from(slot) << bits;
        bits += u32::from(width);
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// The base and slot width that make the column shortest, trying a few outliers at
/// each end as exceptions.
fn choose(values: &[i64]) -> (i64, u8) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n == 0 {
        return (0, 0);
    }
    let mut best = (usize::MAX, 0i64, 0u8);
    for lo in 0..=MAX_OUTLIERS.min(n - 1) {
        for hi in 0..=MAX_OUTLIERS.min(n - 1 - lo) {
            let (base, top) = (sorted[lo], sorted[n - 1 - hi]);
            let width = (64 - (top.wrapping_sub(base) as u64).leading_zeros()) as u8;
            // Equal values on either side of a cut stay inside, so count what is outside.
            let below = sorted.partition_point(|&v| v < base);
            let above = n - sorted.partition_point(|&v| v <= top);
            let cost = (n * usize::from(width)).div_ceil(8) + (below + above) * EXCEPTION_COST;
            if cost < best.0 {
                best = (cost, base, width);
            }
        }
    }
    (best.1, best.2)
}

/// Decodes `n` values packed at the start of `buf`; returns them and the bytes read.
/// Errors on any malformed input, never panics.
pub(crate) fn unpack(buf: &[u8], n: usize) -> Result<(Vec<i64>, usize), StorageError> {
    let mut pos = 0usize;
    let uvarint = |pos: &mut usize| -> Result<u64, StorageError> {
        let (v, len) = get_uvarint(&buf[*pos..]).ok_or_else(|| corrupt("bad varint in packed column"))?;
        *pos += len;
        Ok(v)
    };
    let base = unzigzag(uvarint(&mut pos)?);
    let width = *buf.get(pos).ok_or_else(|| corrupt("packed column ends early"))?;
    pos += 1;
    if width > MAX_WIDTH {
        return Err(corrupt("packed column slot too wide"));
    }
    let count = uvarint(&mut pos)?;
    if count > n as u64 {
        return Err(corrupt("more exceptions than values in packed column"));
    }
    let mut exceptions = Vec::with_capacity(count as usize);
    let mut at = 0u64;
    for _ in 0..count {
        at = at
            .checked_add(uvarint(&mut pos)?)
            .filter(|&i| i < n as u64)
            .ok_or_else(|| corrupt("exception index out of range in packed column"))?;
        exceptions.push((at as usize, unzigzag(uvarint(&mut pos)?)));
    }
    let len = (n * usize::from(width)).div_ceil(8);
    let bytes = pos
        .checked_add(len)
        .and_then(|end| buf.get(pos..end))
        .ok_or_else(|| corrupt("packed column ends early"))?;
    let mask = if width == 0 { 0 } else { u64::MAX >> (64 - u32::from(width)) };
    let mut out = Vec::with_capacity(n);
    let (mut acc, mut bits, mut next) = (0u128, 0u32, bytes.iter());
    for _ in 0..n {
        while bits < u32::from(width) {
            // Cannot run out: `bytes` holds exactly n × width bits, rounded up.
            acc |= u128::from(next.next().copied().unwrap_or(0)) << bits;
            bits += 8;
        }
        out.push(base.wrapping_add((acc as u64 & mask) as i64));
        acc = acc.checked_shr(u32::from(width)).unwrap_or(0);
        bits -= u32::from(width);
    }
    for (i, v) in exceptions {
        out[i] = v;
    }
    Ok((out, pos + len))
}

fn corrupt(why: &str) -> StorageError {
    StorageError::Corrupt(why.to_string())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn roundtrip(values: &[i64]) -> usize {
        let mut buf = Vec::new();
        pack(values, &mut buf);
        buf.push(0xAB);
        let (back, used) = unpack(&buf, values.len()).expect("unpacks");
        assert_eq!(back, values);
        assert_eq!(used, buf.len() - 1, "reads exactly what was written");
        used
    }

    #[test]
    fn uniform_increments_pack_to_their_width() {
        // 1000 values spread over 1024 → 10 bits each, plus a few header bytes.
        let v: Vec<i64> = (0..1000).map(|i| 5000 + (i * 7919) % 1024).collect();
        assert!(roundtrip(&v) <= 1000 * 10 / 8 + 8);
        assert!(roundtrip(&[0; 500]) <= 4, "a constant column is its base alone");
    }

    #[test]
    fn outliers_become_exceptions_instead_of_widening_every_slot() {
        let mut v: Vec<i64> = (0..500).map(|i| i % 4).collect();
        v[0] = i64::MAX;
        v[499] = i64::MIN;
        v[250] = 0x7ff0_0000_0000_0002;
        assert!(roundtrip(&v) < 500 * 2 / 8 + 40);
    }

    #[test]
    fn extremes_roundtrip() {
        roundtrip(&[]);
        roundtrip(&[i64::MIN, i64::MAX]);
        roundtrip(&[i64::MAX, i64::MIN, 0, -1, 1]);
        roundtrip(&(0..20).map(|i| if i % 2 == 0 { i64::MIN } else { i64::MAX }).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn any_column_roundtrips(
            values in proptest::collection::vec(any::<i64>(), 0..300),
            narrow in proptest::collection::vec(-3i64..3, 0..300),
        ) {
            roundtrip(&values);
            roundtrip(&narrow);
            let mixed: Vec<i64> = narrow.iter().zip(&values).map(|(&a, &b)| if a == 2 { b } else { a }).collect();
            roundtrip(&mixed);
        }

        #[test]
        fn unpacking_garbage_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            n in 0usize..2000,
        ) {
            let _ = unpack(&bytes, n);
        }
    }
}
