//! The API envelope: `{"status":"success","data":…}` or
//! `{"status":"error","errorType":…,"error":…}`, with `warnings` and `infos`, and the
//! one place where error types map to HTTP status codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::json;

/// Prometheus's `errorType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Bad input: 400.
    BadData,
    /// The expression could not be executed: 422.
    Execution,
    /// The query was canceled: 499.
    Canceled,
    /// The query timed out: 503.
    Timeout,
    /// Something broke inside: 500.
    Internal,
    /// Not found: 404.
    NotFound,
    /// The store is not open yet: 503.
    Unavailable,
}

/// Status code nginx and Prometheus use for "client closed request".
const STATUS_CLIENT_CLOSED_REQUEST: u16 = 499;

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Canceled => "canceled",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::NotFound => "not_found",
            ErrorType::Unavailable => "unavailable",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Canceled => {
                StatusCode::from_u16(STATUS_CLIENT_CLOSED_REQUEST).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

/// An API error with Prometheus's type and text.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The error class.
    pub kind: ErrorType,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError { kind: ErrorType::BadData, message: message.into() }
    }

    /// `invalid parameter "<name>": <err>`, as Prometheus words bad parameters.
    pub fn invalid_param(name: &str, err: impl std::fmt::Display) -> Self {
        ApiError::bad_data(format!("invalid parameter {name:?}: {err}"))
    }

    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError { kind: ErrorType::Internal, message: message.into() }
    }

    /// An `execution` error.
    pub fn execution(message: impl Into<String>) -> Self {
        ApiError { kind: ErrorType::Execution, message: message.into() }
    }

    /// The answer while the store is still opening.
    pub fn unavailable() -> Self {
        ApiError {
            kind: ErrorType::Unavailable,
            message: "Vigil is starting: the store is not open yet".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = String::from(r#"{"status":"error","errorType":"#);
        json::push_str(&mut body, self.kind.as_str());
        body.push_str(r#","error":"#);
        json::push_str(&mut body, &self.message);
        body.push('}');
        json_response(self.kind.status(), body)
    }
}

/// A successful answer: `data` as already-encoded JSON, plus annotations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiSuccess {
    /// The `data` field, encoded.
    pub data: String,
    /// `warnings`, omitted when empty.
    pub warnings: Vec<String>,
    /// `infos`, omitted when empty.
    pub infos: Vec<String>,
}

impl ApiSuccess {
    /// A success with this data and no annotations.
    pub fn new(data: String) -> Self {
        ApiSuccess { data, ..Default::default() }
    }

    /// The full envelope as JSON text.
    pub fn to_json(&self) -> String {
        let mut body = String::with_capacity(self.data.len() + 64);
        body.push_str(r#"{"status":"success","data":"#);
        body.push_str(&self.data);
        if !self.warnings.is_empty() {
            body.push_str(r#","warnings":"#);
            json::push_str_array(&mut body, self.warnings.iter().map(String::as_str));
        }
        if !self.infos.is_empty() {
            body.push_str(r#","infos":"#);
            json::push_str_array(&mut body, self.infos.iter().map(String::as_str));
        }
        body.push('}');
        body
    }
}

impl IntoResponse for ApiSuccess {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, self.to_json())
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The warning Prometheus attaches when `limit` cut a result short.
pub const TRUNCATED_WARNING: &str = "results truncated due to limit";

/// Runs blocking storage work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("storage task panicked: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_has_prometheus_shape_and_status() {
        let resp = ApiError::invalid_param("query", "1:1: parse error: x").into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ErrorType::Execution.status().as_u16(), 422);
        assert_eq!(ErrorType::Timeout.status().as_u16(), 503);
        assert_eq!(ErrorType::Canceled.status().as_u16(), 499);
        assert_eq!(ErrorType::Internal.status().as_u16(), 500);
    }

    #[test]
    fn success_envelope_omits_empty_annotations() {
        let mut ok = ApiSuccess::new("[]".into());
        assert_eq!(ok.to_json(), r#"{"status":"success","data":[]}"#);
        ok.warnings.push(TRUNCATED_WARNING.into());
        assert_eq!(
            ok.to_json(),
            r#"{"status":"success","data":[],"warnings":["results truncated due to limit"]}"#
        );
    }
}
