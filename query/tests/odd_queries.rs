//! Odd but valid queries must give an answer or an error, never a panic.

use vigil_query::{Engine, EngineOptions, QueryOptions};
use vigil_storage::memory::MemStorage;
use vigil_storage::{Labels, stale_nan};

#[test]
fn odd_queries_do_not_panic() {
    let s = MemStorage::new();
    for (i, name) in ["a", "b_total", "h_bucket"].iter().enumerate() {
        for le in ["0.1", "1", "+Inf", "junk"] {
            let l = Labels::from_pairs([("__name__", *name), ("le", le), ("job", "j")]);
            for k in 0..30i64 {
                let v = if k == 17 { stale_nan() } else { (k * (i as i64 + 1)) as f64 };
                s.add(&l, k * 15_000, v).unwrap();
            }
        }
    }
    let queries = [
        "a[1ms]",
        "rate(a[1ms])",
        "a offset -1y",
        "a @ -100",
        "a @ 1e10",
        "max_over_time(a[10m:10ms])",
        "topk(1e30, a)",
        "topk(-1, a)",
        "quantile(NaN, a)",
        "histogram_quantile(NaN, h_bucket)",
        "histogram_quantile(0.5, a)",
        "label_replace(a, \"x\", \"$99\", \"job\", \"(.*)\")",
        "label_replace(a, \"le\", \"\", \"le\", \".*\")",
        "count_values(\"le\", a)",
        "a / 0",
        "a % 0",
        "-a ^ 0.5",
        "scalar(a)",
        "vector(scalar(a)) + on() group_left a",
        "sum(a) by (nonexistent)",
        "a and on() b_total",
        "a unless ignoring(le) b_total",
        "a > bool on(le, job) group_left b_total",
        "predict_linear(a[1m], -1e308)",
        "round(a, 0)",
        "clamp(a, 5, 1)",
        "absent(nonexistent{a=\"1\", a=\"2\"})",
        "absent_over_time(nonexistent[1m])",
        "sort_desc(a) or sort(b_total)",
        "deriv(a[10m])",
        "double_exponential_smoothing(a[10m], 0.5, 0.5)",
        "resets(a[10m:7s])",
        "info(a)",
        "timestamp(timestamp(a))",
        "day_of_week(vector(-1e18))",
        "increase(a[5m] anchored) + rate(b_total[5m] smoothed)",
        "a smoothed",
        "a[3m+2m:step()]",
        "a offset (1m * -3)",
        "limit_ratio(-0.5, a)",
        "limitk(2, a)",
        "mad_over_time(a[5m])",
        "ts_of_max_over_time(a[5m])",
    ];
    let e = Engine::new(EngineOptions { experimental_functions: true, ..Default::default() });
    for q in queries {
        let _ = e.instant_query(&s, q, 200_000, &QueryOptions::default());
        let _ = e.range_query(&s, q, 0, 450_000, 15_000, &QueryOptions::default());
        let _ = e.range_query(&s, q, -1_000_000, 450_000, 7_000, &QueryOptions::default());
    }
}
