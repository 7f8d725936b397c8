//! Ingest for Vigil: decodes and validates what senders push (Prometheus remote
//! write; later OTLP) and turns it into [`vigil_storage::Appender`] calls.
//! Knows nothing of PromQL or HTTP routing.
//!
//! Public surface: [`remote_write`] — the v1 protobuf messages ([`remote_write::proto`]),
//! [`remote_write::decode_v1`] / [`remote_write::encode_v1`] (snappy block + protobuf), [`remote_write::Limits`] and
//! [`remote_write::write_v1`], which validates a request and appends it in one batch,
//! returning a [`remote_write::WriteReport`].

pub mod remote_write;
