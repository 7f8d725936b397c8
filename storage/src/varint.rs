//! LEB128 varints and zigzag mapping, shared by the chunk and WAL codecs.

/// Most bytes a 64-bit varint can take.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Maps signed to unsigned so that small magnitudes of either sign stay small.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Reads an unsigned varint from the front of `buf`, returning it and its length;
/// `None` when `buf` ends first or the varint is longer than ten bytes.
pub(crate) fn get_uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_extremes() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let (u, n) = get_uvarint(&b).expect("decodes");
            assert_eq!((unzigzag(u), n), (v, b.len()));
        }
        assert_eq!(get_uvarint(&[0x80; 11]), None);
        assert_eq!(get_uvarint(&[0x80]), None);
    }
}
