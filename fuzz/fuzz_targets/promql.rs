//! Any query text against a small store: parsing and evaluation never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_query::{Engine, EngineOptions, QueryOptions};
use vigil_storage::Labels;
use vigil_storage::memory::MemStorage;

/// A few series with counters, gauges, a stale marker and a classic histogram.
fn store() -> &'static MemStorage {
    static STORE: OnceLock<MemStorage> = OnceLock::new();
    STORE.get_or_init(|| {
        let s = MemStorage::new();
        for (i, le) in ["0.1", "1", "+Inf"].iter().enumerate() {
            let l = Labels::from_pairs([("__name__", "h_bucket"), ("le", le), ("job", "a")]);
            for t in 0..20 {
                let _ = s.add(&l, t * 15_000, (t * (i as i64 + 1)) as f64);
            }
        }
        for (name, job) in [("m_total", "a"), ("m_total", "b"), ("g", "a")] {
            let l = Labels::from_pairs([("__name__", name), ("job", job)]);
            for t in 0..20 {
                let v = if t == 10 { vigil_storage::stale_nan() } else { (t % 7) as f64 };
                let _ = s.add(&l, t * 15_000, v);
            }
        }
        s
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    if query.len() > 512 {
        return;
    }
    // Small limits keep a single input from running long; the limits are part of
    // what is exercised.
    let engine = Engine::new(EngineOptions {
        max_samples: 100_000,
        timeout: std::time::Duration::from_secs(1),
        experimental_functions: true,
        ..EngineOptions::default()
    });
    let opts = QueryOptions::default();
    let _ = engine.instant_query(store(), query, 150_000, &opts);
    let _ = engine.range_query(store(), query, 0, 300_000, 30_000, &opts);
});
