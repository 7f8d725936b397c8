//! Any bytes read as an at-rest block chunk never panic; and any samples (times from the
//! input, every float bit pattern) come back bit-exact through the block encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_storage::Sample;
use vigil_storage::block::{decode_chunk, encode_chunk};

/// Largest gap between two samples' timestamps the round trip generates (ms).
const MAX_GAP_MS: u64 = 1 << 40;
/// Samples one block chunk holds (`encode_chunk` keeps the first this many).
const CHUNK_SAMPLES: usize = 1920;

fuzz_target!(|data: &[u8]| {
    let _ = decode_chunk(data);

    let mut t: i64 = -(1 << 50);
    let samples: Vec<Sample> = data
        .chunks_exact(16)
        .map(|c| {
            let (gap, bits) = c.split_at(8);
            let gap = u64::from_le_bytes(gap.try_into().unwrap_or_default()) % MAX_GAP_MS + 1;
            t += gap as i64;
            Sample::new(t, f64::from_bits(u64::from_le_bytes(bits.try_into().unwrap_or_default())))
        })
        .collect();
    if samples.is_empty() {
        return;
    }
    let mut buf = Vec::new();
    encode_chunk(&samples, &mut buf);
    let back = decode_chunk(&buf).expect("a chunk we wrote decodes");
    assert_eq!(back.len(), samples.len().min(CHUNK_SAMPLES), "sample count changed");
    for (a, b) in samples.iter().zip(&back) {
        assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()), "sample changed by the block encoding");
    }
});
