//! Any body sent to `/api/v1/write` (remote write 1.0): decoding and writing never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_ingest::remote_write::{Limits, decode_v1, write_v1};
use vigil_storage::memory::MemStorage;

/// Large enough for any input libFuzzer makes, small enough to keep runs fast.
const MAX_DECOMPRESSED: usize = 1 << 20;

fuzz_target!(|body: &[u8]| {
    if let Ok(req) = decode_v1(body, MAX_DECOMPRESSED) {
        let store = MemStorage::new();
        let _ = write_v1(&store, req, &Limits::default());
    }
});
