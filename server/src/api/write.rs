//! `POST /api/v1/write`: Prometheus remote write 1.0 and 2.0, chosen by the
//! `proto=` parameter of `Content-Type` (1.0 when absent).
//!
//! Answers as Prometheus's receiver does, in plain text: 204 when everything was
//! written; 400 for a malformed body or when anything was refused (1.0 still writes
//! the rest; a malformed 2.0 request writes nothing; a 400 stops the sender from
//! retrying); 413 past the size limits; 415 for content types or encodings we do not
//! take; 500 when the store fails (the sender retries); 503 while the store is still
//! opening. Answers to 2.0 requests carry the `X-Prometheus-Remote-Write-*-Written`
//! counts, which 2.0 senders require.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vigil_ingest::remote_write::{
    DecodeError, V2Error, V2Options, WriteReport, decode_v1, decode_v2, write_v1_with_exemplars, write_v2,
};

use crate::state::AppState;

/// The only media type of remote write.
const PROTOBUF_MEDIA_TYPE: &str = "application/x-protobuf";
/// The `proto=` parameter naming remote write 1.0's message.
const PROTO_V1: &str = "prometheus.WriteRequest";
/// The `proto=` parameter naming remote write 2.0's message.
const PROTO_V2: &str = "io.prometheus.write.v2.Request";
/// The only compression remote write uses.
const SNAPPY: &str = "snappy";
/// Response header: float samples written (remote write 2.0).
const SAMPLES_WRITTEN: &str = "X-Prometheus-Remote-Write-Samples-Written";
/// Response header: native histogram samples written (remote write 2.0).
const HISTOGRAMS_WRITTEN: &str = "X-Prometheus-Remote-Write-Histograms-Written";
/// Response header: exemplars written (remote write 2.0).
const EXEMPLARS_WRITTEN: &str = "X-Prometheus-Remote-Write-Exemplars-Written";

/// Which remote-write message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// A plain-text answer ending in a newline, as Go's `http.Error` writes it.
fn text(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{msg}\n")).into_response()
}

/// Checks `Content-Type` and `Content-Encoding` and picks the message; an error is
/// the 415 to send.
fn check_headers(headers: &HeaderMap) -> Result<Proto, String> {
    let ct = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?")).unwrap_or("").trim();
    let mut proto = Proto::V1;
    // No content type: assume 1.0, as Prometheus does for old senders.
    if !ct.is_empty() {
        let mut parts = ct.split(';');
        let media = parts.next().unwrap_or("").trim();
        if media != PROTOBUF_MEDIA_TYPE {
            return Err(format!(
                "expected {PROTOBUF_MEDIA_TYPE} as the first (media) part, got {ct} content-type"
            ));
        }
        for p in parts {
            let Some((key, value)) = p.trim().split_once('=') else {
                return Err(format!("expected parameters to be key-values, got {p} in {ct} content-type"));
            };
            if key.trim() != "proto" {
                continue;
            }
            proto = match value.trim() {
                PROTO_V1 => Proto::V1,
                PROTO_V2 => Proto::V2,
                other => {
                    return Err(format!(
                        "got {ct} content type; unknown remote write protobuf message {other}, \
                         expected {PROTO_V1} or {PROTO_V2}"
                    ));
                }
            };
        }
    }
    match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("") | Some(SNAPPY) => Ok(proto),
        Some(enc) => Err(format!(
            "{enc} encoding (compression) is not accepted by this server; only {SNAPPY} is acceptable"
        )),
    }
}

/// Set once the first request of each message was seen, so the log tells operators
/// which protocol their senders speak without logging every request.
static SEEN: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Logs the first request of each remote-write message at info level.
fn log_first(proto: Proto) {
    let (i, name) = match proto {
        Proto::V1 => (0, PROTO_V1),
        Proto::V2 => (1, PROTO_V2),
    };
    if !SEEN[i].swap(true, Ordering::Relaxed) {
        tracing::info!(proto = name, "first remote write request of this protocol received");
    }
}

/// Why a write did not complete.
enum Failure {
    Decode(DecodeError),
    Invalid(String),
    Storage(vigil_storage::StorageError),
}

/// Adds the 2.0 count headers to a response.
fn with_counts(mut resp: Response, report: &WriteReport) -> Response {
    let h = resp.headers_mut();
    for (name, n) in [
        (SAMPLES_WRITTEN, report.samples_written),
        (HISTOGRAMS_WRITTEN, 0),
        (EXEMPLARS_WRITTEN, report.exemplars_written),
    ] {
        h.insert(name, n.into());
    }
    resp
}

/// `POST /api/v1/write`.
pub async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(store) = state.storage() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Vigil is starting: the store is not open yet");
    };
    let proto = match check_headers(&headers) {
        Ok(proto) => proto,
        Err(msg) => {
            tracing::warn!(error = %msg, "remote write refused: unsupported content");
            return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg);
        }
    };
    log_first(proto);
    let settings = state.settings().clone();
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = settings.max_write_body_bytes;
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than the limit of {limit} bytes"),
            );
        }
        Err(rejection) => return text(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let exemplars = state.exemplars().clone();
    let outcome = tokio::task::spawn_blocking(move || match proto {
        Proto::V1 => {
            let req = decode_v1(&body, settings.max_write_decompressed_bytes).map_err(Failure::Decode)?;
            write_v1_with_exemplars(&*store, &exemplars, req, &settings.limits).map_err(Failure::Storage)
        }
        Proto::V2 => {
            let req = decode_v2(&body, settings.max_write_decompressed_bytes).map_err(Failure::Decode)?;
            let opts = V2Options {
                limits: settings.limits,
                created_timestamp_zero_ingestion: settings.created_timestamp_zero_ingestion,
            };
            write_v2(&*store, &exemplars, req, &opts).map_err(|e| match e {
                V2Error::Invalid(msg) => Failure::Invalid(msg),
                V2Error::Storage(e) => Failure::Storage(e),
            })
        }
    })
    .await;
    let counts = |resp: Response, report: &WriteReport| match proto {
        Proto::V1 => resp,
        Proto::V2 => with_counts(resp, report),
    };
    let none = WriteReport::default();
    match outcome {
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("remote write panicked: {e}")),
        Ok(Err(Failure::Decode(e @ DecodeError::TooLarge { .. }))) => {
            counts(text(StatusCode::PAYLOAD_TOO_LARGE, e), &none)
        }
        Ok(Err(Failure::Decode(e))) => {
            tracing::warn!(error = %e, "remote write refused: malformed body");
            counts(text(StatusCode::BAD_REQUEST, e), &none)
        }
        Ok(Err(Failure::Invalid(msg))) => {
            tracing::warn!(error = %msg, "remote write 2.0 refused: invalid request, nothing written");
            counts(text(StatusCode::BAD_REQUEST, msg), &none)
        }
        Ok(Err(Failure::Storage(e))) => {
            tracing::error!(error = %e, "remote write failed in storage");
            counts(text(StatusCode::INTERNAL_SERVER_ERROR, e), &none)
        }
        Ok(Ok(report)) if report.has_rejections() => {
            let msg = report.message();
            tracing::warn!(error = %msg, "remote write partly refused");
            counts(text(StatusCode::BAD_REQUEST, msg), &report)
        }
        Ok(Ok(report)) => counts(StatusCode::NO_CONTENT.into_response(), &report),
    }
}
