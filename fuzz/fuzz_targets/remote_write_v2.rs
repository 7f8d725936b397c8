//! Any remote write 2.0 body: decoding, symbol resolution and writing never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_ingest::exemplars::ExemplarStore;
use vigil_ingest::remote_write::{V2Options, decode_v2, write_v2};
use vigil_storage::memory::MemStorage;

/// Large enough for any input libFuzzer makes, small enough to keep runs fast.
const MAX_DECOMPRESSED: usize = 1 << 20;

fuzz_target!(|body: &[u8]| {
    if let Ok(req) = decode_v2(body, MAX_DECOMPRESSED) {
        let store = MemStorage::new();
        let _ = write_v2(&store, &ExemplarStore::new(16), req, &V2Options::default());
    }
});
