//! `POST /api/v1/write`: Prometheus remote write 1.0.
//!
//! Answers as Prometheus's receiver does, in plain text: 204 when everything was
//! written; 400 for a malformed body or when anything was refused (the rest is still
//! written, and a 400 stops the sender from retrying); 413 past the size limits; 415
//! for content types or encodings we do not take (remote write 2.0 among them); 500
//! when the store fails (the sender retries); 503 while the store is still opening.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vigil_ingest::remote_write::{DecodeError, decode_v1, write_v1};

use crate::state::AppState;

/// The only media type of remote write.
const PROTOBUF_MEDIA_TYPE: &str = "application/x-protobuf";
/// The `proto=` parameter naming remote write 1.0's message.
const PROTO_V1: &str = "prometheus.WriteRequest";
/// The `proto=` parameter naming remote write 2.0's message.
const PROTO_V2: &str = "io.prometheus.write.v2.Request";
/// The only compression remote write uses.
const SNAPPY: &str = "snappy";

/// A plain-text answer ending in a newline, as Go's `http.Error` writes it.
fn text(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{msg}\n")).into_response()
}

/// Checks `Content-Type` and `Content-Encoding`; an error is the 415 to send.
fn check_headers(headers: &HeaderMap) -> Result<(), String> {
    let ct = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?")).unwrap_or("").trim();
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
            match value.trim() {
                PROTO_V1 => {}
                PROTO_V2 => {
                    return Err(format!(
                        "remote write 2.0 ({PROTO_V2}) is not supported by Vigil yet; send remote write 1.0 \
                         ({PROTO_V1}, protobuf_message: prometheus.WriteRequest in Prometheus's remote_write config)"
                    ));
                }
                other => {
                    return Err(format!(
                        "got {ct} content type; unknown remote write protobuf message {other}"
                    ));
                }
            }
        }
    }
    match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("") | Some(SNAPPY) => Ok(()),
        Some(enc) => Err(format!(
            "{enc} encoding (compression) is not accepted by this server; only {SNAPPY} is acceptable"
        )),
    }
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
    if let Err(msg) = check_headers(&headers) {
        tracing::warn!(error = %msg, "remote write refused: unsupported content");
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg);
    }
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
    let outcome = tokio::task::spawn_blocking(move || {
        let req = decode_v1(&body, settings.max_write_decompressed_bytes)?;
        Ok::<_, DecodeError>(write_v1(&*store, req, &settings.limits))
    })
    .await;
    match outcome {
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("remote write panicked: {e}")),
        Ok(Err(e @ DecodeError::TooLarge { .. })) => text(StatusCode::PAYLOAD_TOO_LARGE, e),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "remote write refused: malformed body");
            text(StatusCode::BAD_REQUEST, e)
        }
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "remote write failed in storage");
            text(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
        Ok(Ok(Ok(report))) if report.has_rejections() => {
            let msg = report.message();
            tracing::warn!(error = %msg, "remote write partly refused");
            text(StatusCode::BAD_REQUEST, msg)
        }
        Ok(Ok(Ok(_))) => StatusCode::NO_CONTENT.into_response(),
    }
}
