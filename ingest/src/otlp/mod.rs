//! OTLP/HTTP metrics as Prometheus's OTLP receiver takes them in: decoding
//! (protobuf or JSON, gzip or not, via the `opentelemetry-proto` messages), translation
//! into Prometheus series, and the write with `partial_success` reporting.
//!
//! The flow is [`gunzip`] (when `Content-Encoding: gzip`) → [`decode_request`] →
//! [`translate`] (pure; an untranslatable name fails the whole request) →
//! [`write_otlp`] (one storage batch; delta points accumulated when configured).

mod decode;
mod names;
mod translate;
mod write;

pub use decode::{
    CODE_INVALID_ARGUMENT, CODE_RESOURCE_EXHAUSTED, CODE_UNAVAILABLE, Encoding, OtlpDecodeError, Status,
    decode_request, encode_request, encode_response, encode_status, gunzip,
};
pub use names::{NameKind, TranslationStrategy, label_name, metric_name, unit_name};
pub use translate::{OtlpOptions, OutSeries, TranslateError, Translated, format_float, translate};
pub use write::{DeltaState, OtlpReport, write_otlp};

/// The request and response messages, re-exported for callers and tests.
pub use opentelemetry_proto::tonic as proto;

#[cfg(test)]
mod golden_tests;
