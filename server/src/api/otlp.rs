//! `POST /api/v1/otlp/v1/metrics` (Prometheus's path) and `POST /v1/metrics` (what a
//! Collector's `otlphttp` exporter sends to a bare endpoint): OTLP/HTTP metrics.
//!
//! Answers per the OTLP/HTTP spec, in the request's encoding: 200 with an
//! `ExportMetricsServiceResponse` (with `partial_success` when points were refused);
//! 400 with a `google.rpc.Status` for an undecodable body or untranslatable names
//! (nothing written); 413 past the size limits; 415 for other content types or
//! encodings; 429 when too many requests are in flight and 503 while the store is
//! opening or failing, both with `Retry-After`, which OTLP exporters honour.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vigil_ingest::otlp::{
    CODE_INVALID_ARGUMENT, CODE_RESOURCE_EXHAUSTED, CODE_UNAVAILABLE, Encoding, OtlpDecodeError,
    decode_request, encode_response, encode_status, gunzip, translate, write_otlp,
};

use crate::state::AppState;

/// Seconds a refused sender should wait before retrying.
const RETRY_AFTER_SECONDS: &str = "1";

/// An answer body in `encoding`.
fn answer(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}

/// A `google.rpc.Status` error answer.
fn error(status: StatusCode, encoding: Encoding, code: i32, msg: &str) -> Response {
    let mut resp = answer(status, encoding, encode_status(code, msg, encoding));
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    resp
}

/// Plain-text 415: the body's encoding is unknown, so no OTLP encoding can be chosen.
fn unsupported(msg: String) -> Response {
    tracing::warn!(error = %msg, "OTLP request refused: unsupported content");
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

/// Why an OTLP request failed inside the blocking task.
enum Failure {
    Decode(OtlpDecodeError),
    Translate(String),
    Storage(vigil_storage::StorageError),
}

/// `POST /api/v1/otlp/v1/metrics` and `POST /v1/metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(ct) else {
        return unsupported(format!(
            "unsupported content type {ct:?}: OTLP/HTTP takes application/x-protobuf or application/json"
        ));
    };
    let gzipped = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("") | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return unsupported(format!("unsupported content encoding {other:?}: only gzip is accepted"));
        }
    };
    let Ok(store) = state.storage() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            encoding,
            CODE_UNAVAILABLE,
            "Vigil is starting: the store is not open yet",
        );
    };
    let Ok(_permit) = state.ingest_permits().clone().try_acquire_owned() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            encoding,
            CODE_RESOURCE_EXHAUSTED,
            "too many OTLP requests in flight",
        );
    };
    let settings = state.settings().clone();
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let msg =
                format!("request body larger than the limit of {} bytes", settings.max_write_body_bytes);
            return error(StatusCode::PAYLOAD_TOO_LARGE, encoding, CODE_INVALID_ARGUMENT, &msg);
        }
        Err(rejection) => {
            return error(StatusCode::BAD_REQUEST, encoding, CODE_INVALID_ARGUMENT, &rejection.body_text());
        }
    };
    let (exemplars, deltas) = (state.exemplars().clone(), state.deltas().clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let raw = if gzipped {
            gunzip(&body, settings.max_write_decompressed_bytes).map_err(Failure::Decode)?
        } else {
            body.to_vec()
        };
        let req = decode_request(&raw, encoding).map_err(Failure::Decode)?;
        let translated = translate(&req, &settings.otlp).map_err(|e| Failure::Translate(e.0))?;
        write_otlp(&*store, &exemplars, &deltas, translated).map_err(Failure::Storage)
    })
    .await;
    match outcome {
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            encoding,
            CODE_UNAVAILABLE,
            &format!("OTLP write panicked: {e}"),
        ),
        Ok(Err(Failure::Decode(e @ OtlpDecodeError::TooLarge { .. }))) => {
            error(StatusCode::PAYLOAD_TOO_LARGE, encoding, CODE_INVALID_ARGUMENT, &e.to_string())
        }
        Ok(Err(Failure::Decode(e))) => {
            tracing::warn!(error = %e, "OTLP request refused: undecodable body");
            error(StatusCode::BAD_REQUEST, encoding, CODE_INVALID_ARGUMENT, &e.to_string())
        }
        Ok(Err(Failure::Translate(msg))) => {
            tracing::warn!(error = %msg, "OTLP request refused: untranslatable, nothing written");
            error(StatusCode::BAD_REQUEST, encoding, CODE_INVALID_ARGUMENT, &msg)
        }
        Ok(Err(Failure::Storage(e))) => {
            tracing::error!(error = %e, "OTLP write failed in storage");
            error(StatusCode::SERVICE_UNAVAILABLE, encoding, CODE_UNAVAILABLE, &e.to_string())
        }
        Ok(Ok(report)) => {
            if report.rejected > 0 {
                tracing::warn!(rejected = report.rejected, error = %report.message, "OTLP request partly refused");
            }
            answer(StatusCode::OK, encoding, encode_response(report.rejected, &report.message, encoding))
        }
    }
}
