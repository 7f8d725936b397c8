//! Writes remote-write 1.0 request bodies to files, for pushing at a running Vigil
//! with any HTTP client (e.g. `curl --data-binary @req-0.bin -H 'Content-Encoding: snappy'
//! -H 'Content-Type: application/x-protobuf' http://127.0.0.1:9090/api/v1/write`).
//!
//! Usage: `cargo run -p vigil-ingest --example encode_requests -- <dir> [requests] [series] [samples-per-series]`.
//! Each request continues the previous one's timestamps, as a real sender's would.

use vigil_ingest::remote_write::encode_v1;
use vigil_ingest::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};

/// Scrape interval between consecutive samples, in ms.
const STEP_MS: i64 = 15_000;
/// First timestamp written (2023-11-14), in ms.
const FIRST_TS_MS: i64 = 1_700_000_000_000;

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: encode_requests <dir> [requests] [series] [samples]")?;
    let (requests, series, per_series) = (arg(2, 20), arg(3, 1_000), arg(4, 10));
    std::fs::create_dir_all(&dir)?;
    for r in 0..requests {
        let timeseries = (0..series)
            .map(|i| TimeSeries {
                labels: vec![
                    Label::new("__name__", format!("http_requests_total_{}", i % 50)),
                    Label::new("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
                    Label::new("job", "node"),
                    Label::new("path", format!("/api/v{}/items", i % 7)),
                ],
                samples: (0..per_series)
                    .map(|j| Sample {
                        value: (r * per_series + j) as f64,
                        timestamp: FIRST_TS_MS + ((r * per_series + j) as i64) * STEP_MS,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let body = encode_v1(&WriteRequest { timeseries, metadata: vec![] })?;
        std::fs::write(format!("{dir}/req-{r}.bin"), body)?;
    }
    println!("wrote {requests} requests of {} samples to {dir}", series * per_series);
    Ok(())
}
