//! Bit streams, most significant bit first, for the XOR chunk.

use super::sink::ChunkBytes;

/// Appends bits to a byte buffer (which may already hold a header).
#[derive(Debug, Clone)]
pub(crate) struct BitWriter {
    /// Bits still free in the last byte of the caller's buffer (0 = start a new byte).
    free: u8,
}

impl BitWriter {
    /// A writer whose next bit starts a new byte.
    pub(crate) fn new() -> Self {
        BitWriter { free: 0 }
    }

    /// Writes one bit.
    pub(crate) fn bit<B: ChunkBytes>(&mut self, out: &mut B, bit: bool) {
        self.bits(out, u64::from(bit), 1);
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), highest first.
    pub(crate) fn bits<B: ChunkBytes>(&mut self, out: &mut B, v: u64, mut n: u32) {
        while n > 0 {
            if self.free == 0 {
                out.push(0);
                self.free = 8;
            }
            let free = u32::from(self.free);
            let take = n.min(free);
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = out.last_mut() {
                *last |= chunk << (free - take);
            }
            // take ≤ free ≤ 8.
            self.free -= take as u8;
            n -= take;
        }
    }
}

/// Reads bits from a byte slice; every read past the end yields `None`.
pub(crate) struct BitReader {
    /// Position of the next bit, counted from the start of the slice.
    pos: usize,
}

impl BitReader {
    /// A reader starting at byte `offset`.
    pub(crate) fn at_byte(offset: usize) -> Self {
        BitReader { pos: offset * 8 }
    }

    /// Reads one bit.
    #[inline]
    pub(crate) fn bit(&mut self, buf: &[u8]) -> Option<bool> {
        let byte = *buf.get(self.pos / 8)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// Reads `n` bits (n ≤ 64) as the low bits of a `u64`.
    pub(crate) fn bits(&mut self, buf: &[u8], mut n: u32) -> Option<u64> {
        let mut out = 0u64;
        while n > 0 {
            let byte = *buf.get(self.pos / 8)?;
            let avail = 8 - (self.pos % 8) as u32;
            let take = n.min(avail);
            let bits = (u32::from(byte) >> (avail - take)) & ((1u32 << take) - 1);
            out = (out << take) | u64::from(bits);
            self.pos += take as usize;
            n -= take;
        }
        Some(out)
    }

    /// Reads a varint written as whole bytes of bits.
    pub(crate) fn uvarint(&mut self, buf: &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..crate::varint::MAX_VARINT_LEN {
            let b = self.bits(buf, 8)?;
            v |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_roundtrip() {
        let mut out = vec![0xAA];
        let mut w = BitWriter::new();
        let items: Vec<(u64, u32)> = (0..=64).map(|n| (0xDEAD_BEEF_CAFE_F00Du64, n)).collect();
        for &(v, n) in &items {
            w.bits(&mut out, v, n);
        }
        let mut r = BitReader::at_byte(1);
        for &(v, n) in &items {
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            assert_eq!(r.bits(&out, n), Some(v & mask), "width {n}");
        }
        assert_eq!(out[0], 0xAA);
    }
}
