//! Any bytes read as a WAL segment: frame decoding never panics and always makes progress.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_storage::wal::record::decode_frame;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((_, used)) = decode_frame(rest) {
        assert!(used > 0 && used <= rest.len(), "a frame must consume bytes it has");
        rest = &rest[used..];
    }
});
