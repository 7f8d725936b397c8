//! Any bytes read as a head chunk: iterating and seeking never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_storage::chunk::XorIter;

fuzz_target!(|data: &[u8]| {
    let Some((seek, bytes)) = data.split_first_chunk::<8>() else { return };
    let mut it = XorIter::new(bytes.to_vec());
    let _ = it.seek(i64::from_le_bytes(*seek));
    for _ in it.by_ref() {}
    let _ = it.error();
});
