//! Remote-write 1.0 bodies: snappy block format around a protobuf `WriteRequest`.
//!
//! The declared decompressed length (the snappy preamble) is checked against a limit
//! before anything is allocated, so a tiny body cannot make us allocate gigabytes.

use prost::Message;
use thiserror::Error;

use super::proto::WriteRequest;
use super::proto_v2;

/// Why a remote-write body could not be turned into a [`WriteRequest`].
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The body is not valid snappy block format.
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// The body would decompress to more than the configured limit.
    #[error("decompressed size {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size the snappy preamble declares.
        declared: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The decompressed bytes are not a valid `WriteRequest`.
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decompresses (snappy block format) and decodes a remote-write 1.0 body, refusing
/// bodies that declare more than `max_decompressed` bytes.
pub fn decode_v1(body: &[u8], max_decompressed: usize) -> Result<WriteRequest, DecodeError> {
    // Decoding from `Bytes` makes the label fields slices of the buffer, not copies.
    let raw = bytes::Bytes::from(decompress(body, max_decompressed)?);
    Ok(WriteRequest::decode(raw)?)
}

/// Decompresses (snappy block format) and decodes a remote-write 2.0 body, refusing
/// bodies that declare more than `max_decompressed` bytes.
pub fn decode_v2(body: &[u8], max_decompressed: usize) -> Result<proto_v2::Request, DecodeError> {
    let raw = decompress(body, max_decompressed)?;
    Ok(proto_v2::Request::decode(raw.as_slice())?)
}

/// Snappy block decompression after checking the declared size against the limit.
fn decompress(body: &[u8], max_decompressed: usize) -> Result<Vec<u8>, DecodeError> {
    let declared = snap::raw::decompress_len(body)?;
    if declared > max_decompressed {
        return Err(DecodeError::TooLarge { declared, limit: max_decompressed });
    }
    Ok(snap::raw::Decoder::new().decompress_vec(body)?)
}

/// Encodes a remote-write 2.0 request as senders do (protobuf, then snappy block
/// format); used by tests, benches and the load harness.
pub fn encode_v2(req: &proto_v2::Request) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

/// Encodes a request as a remote-write 1.0 body (protobuf, then snappy block format),
/// as senders do; used by tests and the load harness. Fails only past snappy's
/// input size limit (about 4 GiB).
pub fn encode_v1(req: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::proto::{Label, MetricMetadata, MetricType, Sample, TimeSeries};
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 20;

    fn golden_request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", "http_requests_total"), Label::new("job", "api")],
                samples: vec![
                    Sample { value: 1.0, timestamp: 1_700_000_000_000 },
                    Sample { value: 2.5, timestamp: 1_700_000_015_000 },
                ],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "http_requests_total".into(),
                help: "Requests served.".into(),
                unit: String::new(),
            }],
        }
    }

    const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/write_request_v1.snappy");

    /// The checked-in bytes pin the wire format: field numbers, types and snappy framing.
    /// Regenerate with `VIGIL_BLESS=1 cargo test -p vigil-ingest golden` only after a
    /// deliberate change.
    #[test]
    fn golden_request_encodes_to_checked_in_bytes_and_back() {
        let encoded = encode_v1(&golden_request()).expect("encode");
        if std::env::var_os("VIGIL_BLESS").is_some() {
            std::fs::write(GOLDEN_PATH, &encoded).expect("write golden file");
        }
        let golden = std::fs::read(GOLDEN_PATH).expect("golden file");
        assert_eq!(encoded, golden);
        assert_eq!(decode_v1(&golden, LIMIT).expect("decode"), golden_request());
    }

    #[test]
    fn declared_size_over_limit_is_refused_before_decompressing() {
        let body = encode_v1(&golden_request()).expect("encode");
        match decode_v1(&body, 8) {
            Err(DecodeError::TooLarge { limit: 8, declared }) => assert!(declared > 8),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn bad_snappy_and_bad_protobuf_are_typed_errors() {
        assert!(matches!(decode_v1(b"\xff\xff\xff\xff\xff\xff", LIMIT), Err(DecodeError::Snappy(_))));
        let not_proto = snap::raw::Encoder::new().compress_vec(b"\x0a\xff\xff").expect("compress");
        assert!(matches!(decode_v1(&not_proto, LIMIT), Err(DecodeError::Protobuf(_))));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_v1(&body, LIMIT);
        }

        #[test]
        fn random_protobuf_payloads_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let body = snap::raw::Encoder::new().compress_vec(&raw).expect("compress");
            let _ = decode_v1(&body, LIMIT);
            let _ = decode_v2(&body, LIMIT);
        }

        #[test]
        fn v2_requests_round_trip(
            symbols in proptest::collection::vec("\\PC{0,8}", 1..8),
            refs in proptest::collection::vec(0u32..12, 0..10),
            value in any::<f64>().prop_filter("NaN never equals itself", |v| !v.is_nan()),
            timestamp in any::<i64>(),
        ) {
            let req = proto_v2::Request {
                symbols,
                timeseries: vec![proto_v2::TimeSeries {
                    labels_refs: refs,
                    samples: vec![proto_v2::Sample { value, timestamp, start_timestamp: 0 }],
                    ..Default::default()
                }],
            };
            let body = encode_v2(&req).expect("encode");
            prop_assert_eq!(decode_v2(&body, LIMIT).expect("decode"), req);
        }
    }
}
