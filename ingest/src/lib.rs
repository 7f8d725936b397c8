//! Ingest for Vigil: decodes and validates what senders push (Prometheus remote
//! write 1.0 and 2.0, OTLP metrics) and turns it into [`vigil_storage::Appender`]
//! calls. Knows nothing of PromQL or HTTP routing.
//!
//! Public surface: [`remote_write`] — the v1 and v2 protobuf messages
//! ([`remote_write::proto`], [`remote_write::proto_v2`]), the decoders and encoders
//! (snappy block + protobuf), [`remote_write::Limits`], and [`remote_write::write_v1`] /
//! [`remote_write::write_v2`], which validate a request and append it, returning a
//! [`remote_write::WriteReport`]; [`exemplars`] — the bounded in-memory exemplar store; [`otlp`] — OTLP/HTTP
//! metrics decoding, translation to Prometheus series ([`otlp::translate`]) and
//! [`otlp::write_otlp`].

pub mod exemplars;
pub mod otlp;
pub mod remote_write;
