//! OTLP/HTTP bodies: protobuf or JSON, optionally gzip-compressed, into an
//! `ExportMetricsServiceRequest`; and the answers (`ExportMetricsServiceResponse`,
//! `google.rpc.Status`) in the request's encoding.

use std::io::Read;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use serde::Deserialize;
use thiserror::Error;

/// How an OTLP body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` header (parameters ignored), if OTLP has it.
    pub fn from_content_type(ct: &str) -> Option<Encoding> {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of answers in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Why an OTLP body could not be decoded.
#[derive(Debug, Error)]
pub enum OtlpDecodeError {
    /// The gzip stream is corrupt or truncated.
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    /// The body decompresses to more than the limit.
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The bytes are not a valid protobuf `ExportMetricsServiceRequest`.
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The text is not a valid OTLP/JSON `ExportMetricsServiceRequest`.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON parses, but a field has the wrong type or shape.
    #[error("json: {0}")]
    Malformed(String),
}

/// Gunzips `body`, refusing more than `limit` bytes of output.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, OtlpDecodeError> {
    let mut out = Vec::new();
    let reader = flate2::read::GzDecoder::new(body);
    // One byte past the limit tells "exactly the limit" from "more".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut out).map_err(OtlpDecodeError::Gzip)?;
    if out.len() > limit {
        return Err(OtlpDecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// Decodes an uncompressed OTLP body.
pub fn decode_request(
    raw: &[u8],
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, OtlpDecodeError> {
    match encoding {
        Encoding::Protobuf => Ok(ExportMetricsServiceRequest::decode(raw)?),
        Encoding::Json => {
            // One parse into a tree, then the typed message from the tree, which the
            // oneof check below needs anyway.
            let tree: serde_json::Value = serde_json::from_slice(raw)?;
            let req = ExportMetricsServiceRequest::deserialize(&tree)?;
            check_oneofs(&tree, &req)?;
            Ok(req)
        }
    }
}

/// JSON keys of `Metric.data`, in the order of the `Data` variants.
const DATA_KEYS: [&str; 5] = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"];
/// JSON keys of a number's `value` oneof.
const VALUE_KEYS: [&str; 2] = ["asDouble", "asInt"];

/// The serde derives of `opentelemetry-proto` flatten the `oneof` fields, and serde
/// turns a flattened `Option` that fails to parse into `None` without an error: a
/// gauge with a malformed point would silently vanish. This walks the JSON tree beside
/// the decoded message and turns every such silent `None` into an error.
fn check_oneofs(tree: &serde_json::Value, req: &ExportMetricsServiceRequest) -> Result<(), OtlpDecodeError> {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let bad = |what: String| OtlpDecodeError::Malformed(what);
    let arr =
        |v: &serde_json::Value, key: &str| v.get(key).and_then(|a| a.as_array()).cloned().unwrap_or_default();
    let has_any =
        |v: &serde_json::Value, keys: &[&str]| keys.iter().any(|k| v.get(k).is_some_and(|x| !x.is_null()));
    for (rm, rm_json) in req.resource_metrics.iter().zip(arr(tree, "resourceMetrics")) {
        for (sm, sm_json) in rm.scope_metrics.iter().zip(arr(&rm_json, "scopeMetrics")) {
            for (m, m_json) in sm.metrics.iter().zip(arr(&sm_json, "metrics")) {
                let Some(data) = &m.data else {
                    if has_any(&m_json, &DATA_KEYS) {
                        return Err(bad(format!("metric {:?}: its data is not valid OTLP/JSON", m.name)));
                    }
                    continue;
                };
                let (key, values): (&str, Vec<bool>) = match data {
                    Data::Gauge(g) => ("gauge", g.data_points.iter().map(|p| p.value.is_some()).collect()),
                    Data::Sum(s) => ("sum", s.data_points.iter().map(|p| p.value.is_some()).collect()),
                    _ => continue,
                };
                let points = m_json.get(key).map(|d| arr(d, "dataPoints")).unwrap_or_default();
                for (i, (has_value, p_json)) in values.iter().zip(&points).enumerate() {
                    if !has_value && has_any(p_json, &VALUE_KEYS) {
                        return Err(bad(format!("metric {:?}: data point {i} has an invalid value", m.name)));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Encodes a request body as an OTLP exporter does (for tests, benches and tools).
pub fn encode_request(req: &ExportMetricsServiceRequest, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => req.encode_to_vec(),
        // Serializing plain data with string keys cannot fail.
        Encoding::Json => serde_json::to_vec(req).unwrap_or_default(),
    }
}

/// The success answer: empty, or with `partial_success` when points were refused.
pub fn encode_response(rejected: u64, message: &str, encoding: Encoding) -> Vec<u8> {
    let partial_success = (rejected > 0 || !message.is_empty()).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: message.to_owned(),
    });
    let resp = ExportMetricsServiceResponse { partial_success };
    match encoding {
        Encoding::Protobuf => resp.encode_to_vec(),
        // serde would write `"partialSuccess":null`; OTLP/JSON omits absent fields.
        Encoding::Json if resp.partial_success.is_none() => b"{}".to_vec(),
        Encoding::Json => serde_json::to_vec(&resp).unwrap_or_default(),
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `google.rpc.Code` INVALID_ARGUMENT, for 400 answers.
pub const CODE_INVALID_ARGUMENT: i32 = 3;
/// `google.rpc.Code` RESOURCE_EXHAUSTED, for 429 answers.
pub const CODE_RESOURCE_EXHAUSTED: i32 = 8;
/// `google.rpc.Code` UNAVAILABLE, for 503 answers.
pub const CODE_UNAVAILABLE: i32 = 14;

/// An error answer body in the request's encoding.
pub fn encode_status(code: i32, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => Status { code, message: message.to_owned() }.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": code, "message": message }).to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    const LIMIT: usize = 1 << 20;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("gzip");
        enc.finish().expect("gzip")
    }

    #[test]
    fn content_types() {
        assert_eq!(Encoding::from_content_type("application/x-protobuf"), Some(Encoding::Protobuf));
        assert_eq!(Encoding::from_content_type("application/json; charset=utf-8"), Some(Encoding::Json));
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn gunzip_round_trips_and_refuses_bad_and_oversized_streams() {
        assert_eq!(gunzip(&gzip(b"hello"), LIMIT).expect("gunzip"), b"hello");
        assert!(matches!(gunzip(b"not gzip at all", LIMIT), Err(OtlpDecodeError::Gzip(_))));
        let whole = gzip(&[7u8; 1000]);
        assert!(matches!(gunzip(&whole[..whole.len() / 2], LIMIT), Err(OtlpDecodeError::Gzip(_))));
        assert!(matches!(gunzip(&whole, 999), Err(OtlpDecodeError::TooLarge { limit: 999 })));
        assert_eq!(gunzip(&whole, 1000).expect("exactly the limit").len(), 1000);
    }

    #[test]
    fn wrong_json_types_are_errors() {
        let bad = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":5}]}]}]}"#;
        assert!(matches!(decode_request(bad, Encoding::Json), Err(OtlpDecodeError::Json(_))));
        let bad_time = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"timeUnixNano":"soon","asDouble":1}]}}]}]}]}"#;
        let err = decode_request(bad_time, Encoding::Json).expect_err("bad time");
        assert!(err.to_string().contains("metric \"x\""), "{err}");
        let bad_value = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","sum":{"dataPoints":[{"timeUnixNano":"1","asDouble":"many"}]}}]}]}]}"#;
        let err = decode_request(bad_value, Encoding::Json).expect_err("bad value");
        assert!(err.to_string().contains("data point 0 has an invalid value"), "{err}");
        let numbers_as_numbers = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","sum":{"dataPoints":[{"timeUnixNano":1,"asInt":3}]}}]}]}]}"#;
        assert!(decode_request(numbers_as_numbers, Encoding::Json).is_ok());
    }

    #[test]
    fn answers_encode_in_the_request_encoding() {
        let json = encode_response(2, "2 exponential histogram points refused", Encoding::Json);
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(v["partialSuccess"]["errorMessage"], "2 exponential histogram points refused");
        let pb = encode_response(0, "", Encoding::Protobuf);
        assert!(pb.is_empty(), "a full success is an empty message");
        let status = Status::decode(encode_status(3, "bad", Encoding::Protobuf).as_slice()).expect("status");
        assert_eq!((status.code, status.message.as_str()), (3, "bad"));
    }

    proptest! {
        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(&body, Encoding::Protobuf);
            let _ = decode_request(&body, Encoding::Json);
            let _ = gunzip(&body, LIMIT);
        }
    }
}
