//! Any OTLP body, as protobuf or JSON: decoding, translation and writing never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_ingest::exemplars::ExemplarStore;
use vigil_ingest::otlp::{DeltaState, Encoding, OtlpOptions, decode_request, translate, write_otlp};
use vigil_storage::memory::MemStorage;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let encoding = if first & 1 == 0 { Encoding::Protobuf } else { Encoding::Json };
    let Ok(req) = decode_request(body, encoding) else { return };
    let opts = OtlpOptions { convert_delta_to_cumulative: first & 2 != 0, ..OtlpOptions::default() };
    if let Ok(t) = translate(&req, &opts) {
        let store = MemStorage::new();
        let _ = write_otlp(&store, &ExemplarStore::new(16), &DeltaState::new(), t);
    }
});
