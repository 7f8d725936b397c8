//! Frame-of-reference bit packing of an integer column, with exceptions: every value is
//! stored as its offset from the column's smallest kept value in a truncated binary code
//! (within a fraction of a bit of the range's size),
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

/// Appends `values` packed to `out`.
pub(crate) fn pack(values: &[i64], out: &mut Vec<u8>) {
    let (base, top) = choose(values);
    let fits = |v: i64| v >= base && (v.wrapping_sub(base) as u64) <= top;
    put_varint(out, base);
    put_uvarint(out, top);
    let exceptions: Vec<(usize, i64)> =
        values.iter().copied().enumerate().filter(|&(_, v)| !fits(v)).collect();
    put_uvarint(out, exceptions.len() as u64);
    let mut prev = 0usize;
    for &(i, v) in &exceptions {
        put_uvarint(out, (i - prev) as u64);
        put_varint(out, v);
        prev = i;
    }
    let code = Code::new(top);
    let mut w = BitWriter { out, acc: 0, bits: 0 };
    for &v in values {
        let slot = if fits(v) { v.wrapping_sub(base) as u64 } else { 0 };
        code.write(&mut w, slot);
    }
    w.finish();
}

/// The truncated binary code of slots `0..=top`: with `2^k ≤ top + 1 < 2^(k+1)`, the
/// first `u = 2^(k+1) - (top + 1)` slots take `k` bits and the others `k + 1`, so a
/// column whose range is not a power of two wastes almost nothing to rounding.
struct Code {
    k: u32,
    u: u128,
}

impl Code {
    fn new(top: u64) -> Code {
        let r = u128::from(top) + 1;
        let k = 127 - r.leading_zeros();
        Code { k, u: (1u128 << (k + 1)) - r }
    }

    fn write(&self, w: &mut BitWriter<'_>, slot: u64) {
        if u128::from(slot) < self.u {
            w.put(u128::from(slot), self.k);
        } else {
            // The first k bits of a long code are at least u, which tells them apart.
            let c = u128::from(slot) + self.u;
            w.put(c >> 1, self.k);
            w.put(c & 1, 1);
        }
    }

    fn read(&self, r: &mut BitReader<'_>) -> Result<u64, StorageError> {
        let y = r.take(self.k)?;
        let slot = if y < self.u { y } else { ((y << 1) | r.take(1)?) - self.u };
        // Below top + 1 by construction, so it fits.
        Ok(slot as u64)
    }
}

/// Writes bit fields low bit first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u128,
    bits: u32,
}

impl BitWriter<'_> {
    /// Appends the low `n` (≤ 64) bits of `v`.
    fn put(&mut self, v: u128, n: u32) {
        self.acc |= v << self.bits;
        self.bits += n;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    fn finish(self) {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Reads what [`BitWriter`] wrote, failing when the bytes run out.
struct BitReader<'a> {
    bytes: std::slice::Iter<'a, u8>,
    acc: u128,
    bits: u32,
}

impl BitReader<'_> {
    /// The next `n` (≤ 64) bits.
    fn take(&mut self, n: u32) -> Result<u128, StorageError> {
        while self.bits < n {
            let b = self.bytes.next().ok_or_else(|| corrupt("packed column ends early"))?;
            self.acc |= u128::from(*b) << self.bits;
            self.bits += 8;
        }
        let v = self.acc & ((1u128 << n) - 1);
        self.acc >>= n;
        self.bits -= n;
        Ok(v)
    }
}

/// The base and largest slot that make the column shortest, trying a few outliers at
/// each end as exceptions.
fn choose(values: &[i64]) -> (i64, u64) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n == 0 {
        return (0, 0);
    }
    let mut best = (f64::MAX, 0i64, 0u64);
    for lo in 0..=MAX_OUTLIERS.min(n - 1) {
        for hi in 0..=MAX_OUTLIERS.min(n - 1 - lo) {
            let (base, top) = (sorted[lo], sorted[n - 1 - hi]);
            let range = top.wrapping_sub(base) as u64;
            // Equal values on either side of a cut stay inside, so count what is outside.
            let below = sorted.partition_point(|&v| v < base);
            let above = n - sorted.partition_point(|&v| v <= top);
            let bits_per_slot = (range as f64 + 1.0).log2();
            let cost = n as f64 * bits_per_slot / 8.0 + ((below + above) * EXCEPTION_COST) as f64;
            if cost < best.0 {
                best = (cost, base, range);
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
    let code = Code::new(uvarint(&mut pos)?);
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
    let rest = &buf[pos..];
    let mut r = BitReader { bytes: rest.iter(), acc: 0, bits: 0 };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(base.wrapping_add(code.read(&mut r)? as i64));
    }
    for (i, v) in exceptions {
        out[i] = v;
    }
    let used = rest.len() - r.bytes.len();
    Ok((out, pos + used))
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
    fn a_range_short_of_a_power_of_two_costs_its_log_not_the_next_bit() {
        // 600 values: log2 600 ≈ 9.23 bits, where fixed slots would take 10.
        let v: Vec<i64> = (0..1000).map(|i| (i * 7919) % 600).collect();
        let len = roundtrip(&v);
        assert!(len <= 1000 * 935 / 800 + 8, "{len}");
        for top in [0u64, 1, 2, 3, 5, 255, 256, 257, u64::MAX - 1, u64::MAX] {
            let v: Vec<i64> =
                [0, top, top / 2, top.saturating_sub(1), 1.min(top)].iter().map(|&x| x as i64).collect();
            roundtrip(&v);
        }
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
