//! Prometheus remote write 1.0: the wire messages, the decoder, validation and the
//! translation into one storage batch.
//!
//! The flow is `decode_v1` (snappy block format, then protobuf) → `write_v1`
//! (validate each series as Prometheus 3 does, append the valid ones, commit once,
//! report what was refused and why).

mod decode;
pub mod proto;
mod validate;
mod write;

pub use decode::{DecodeError, decode_v1, encode_v1};
pub use validate::{
    DEFAULT_MAX_LABEL_NAME_LENGTH, DEFAULT_MAX_LABEL_NAMES_PER_SERIES, DEFAULT_MAX_LABEL_VALUE_LENGTH,
    InvalidSeries, Limits, validate_labels,
};
pub use write::{WriteReport, write_v1};
