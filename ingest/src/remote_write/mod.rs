//! Prometheus remote write 1.0: the wire messages, the decoder, validation and the
//! translation into one storage batch.
//!
//! The flow is `decode_v1` (snappy block format, then protobuf) → `write_v1`
//! (validate each series as Prometheus 3 does, append the valid ones, commit once,
//! report what was refused and why). Remote write 2.0 is `decode_v2` → `write_v2`:
//! every symbol reference and label set is checked before anything is appended, so a
//! malformed request writes nothing.

mod decode;
pub mod proto;
pub mod proto_v2;
mod validate;
mod write;
mod write_v2;

pub use decode::{DecodeError, decode_v1, decode_v2, encode_v1, encode_v2};
pub use validate::{
    DEFAULT_MAX_LABEL_NAME_LENGTH, DEFAULT_MAX_LABEL_NAMES_PER_SERIES, DEFAULT_MAX_LABEL_VALUE_LENGTH,
    InvalidSeries, Limits, validate_labels, validate_pairs,
};
pub use write::{WriteReport, write_v1, write_v1_with_exemplars};
pub use write_v2::{V2Error, V2Options, write_v2};
