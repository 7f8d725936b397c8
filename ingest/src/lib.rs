//! Ingest for Vigil: decodes and validates what senders push (Prometheus remote
//! write; later OTLP) and turns it into [`vigil_storage::Appender`] calls.
//! Knows nothing of PromQL or HTTP routing.
