//! Series selection and label lookups over a head of 1,000,000 series with 1,000,000
//! distinct values of one label: postings intersection of two equality matchers, regex
//! matchers of the shapes the index answers without testing every value (literal sets,
//! literal prefixes) and of those it must scan (suffix, substring), and the
//! `/api/v1/labels` and `/api/v1/label/<name>/values` lookups with and without matchers.
//! Through the public `Querier` of a real `Db`, so the figures include building the
//! (small) result, as a query pays.
//!
//! Run with `cargo bench -p vigil-bench --bench postings`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_storage::{Appendable, Db, DbOptions, Labels, MatchOp, Matcher, Querier, SelectHints};

/// Series in the head, each with its own `id` value.
const SERIES: usize = 1_000_000;
/// Distinct `job` values: each job holds a tenth of the series.
const JOBS: usize = 10;
/// Distinct `instance` values: each holds 1,000 series.
const INSTANCES: usize = 1_000;
/// Series per commit while loading.
const LOAD_BATCH: usize = 10_000;
/// Timestamp of the one sample every series gets.
const T: i64 = 1_700_000_000_000;

fn load(db: &Db) {
    for start in (0..SERIES).step_by(LOAD_BATCH) {
        let mut app = db.appender();
        for i in start..(start + LOAD_BATCH).min(SERIES) {
            let labels = Labels::from_pairs([
                ("__name__", "bench_metric".to_string()),
                ("id", i.to_string()),
                ("instance", format!("inst-{}", i % INSTANCES)),
                ("job", format!("job-{}", i % JOBS)),
            ]);
            app.append(&labels, T, i as f64);
        }
        app.commit().expect("commit");
    }
}

fn bench_postings(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    load(&db);
    let hints = SelectHints { start: T, end: T, ..Default::default() };
    let re = |name: &str, value: &str| Matcher::new(MatchOp::Regex, name, value).expect("valid regex");
    let mut group = c.benchmark_group("postings_1m_series");
    group.sample_size(20);
    // 100,000 series of job-3 intersected with 1,000 of inst-7: 100 series.
    let intersect = [Matcher::equal("job", "job-3"), Matcher::equal("instance", "inst-7")];
    group.bench_function("intersect_job_and_instance", |b| {
        b.iter(|| black_box(db.select(black_box(&intersect), &hints).expect("select")).len())
    });
    // A prefix regex over 1,000,000 values of `id`: 12345 and 123450..=123459.
    let prefix = [re("id", "12345.*")];
    group.bench_function("regex_prefix_over_1m_values", |b| {
        b.iter(|| black_box(db.select(black_box(&prefix), &hints).expect("select")).len())
    });
    // An alternation over 1,000,000 values, intersected with a job.
    let alternation = [Matcher::equal("job", "job-1"), re("id", "(1|21|301|4001|50001)")];
    group.bench_function("regex_alternation_and_job_over_1m_values", |b| {
        b.iter(|| black_box(db.select(black_box(&alternation), &hints).expect("select")).len())
    });
    // Literal prefix then an alternation: 1234x and 1256x, 22 values.
    let prefix_alternation = [re("id", "12(34|56).*")];
    group.bench_function("regex_prefix_alternation_over_1m_values", |b| {
        b.iter(|| black_box(db.select(black_box(&prefix_alternation), &hints).expect("select")).len())
    });
    // A suffix (no usable prefix): 1,000 values end in 4321.
    let suffix = [re("id", ".*4321")];
    group.bench_function("regex_suffix_over_1m_values", |b| {
        b.iter(|| black_box(db.select(black_box(&suffix), &hints).expect("select")).len())
    });
    // A substring: about 500 values contain 98765.
    let contains = [re("id", ".*98765.*")];
    group.bench_function("regex_contains_over_1m_values", |b| {
        b.iter(|| black_box(db.select(black_box(&contains), &hints).expect("select")).len())
    });
    // A negative alternation next to an equality matcher: inst-1's 1,000 series minus five.
    let negative = [
        Matcher::equal("instance", "inst-1"),
        Matcher::new(MatchOp::NotRegex, "id", "1|1001|2001|3001|4001").expect("valid regex"),
    ];
    group.bench_function("regex_negative_alternation_and_instance_over_1m_values", |b| {
        b.iter(|| black_box(db.select(black_box(&negative), &hints).expect("select")).len())
    });
    group.finish();

    let mut group = c.benchmark_group("label_lookups_1m_series");
    group.sample_size(20);
    group.bench_function("label_names", |b| {
        b.iter(|| black_box(db.label_names(&[], T, T).expect("names")).len())
    });
    let job = [Matcher::equal("job", "job-3")];
    group.bench_function("label_names_of_job", |b| {
        b.iter(|| black_box(db.label_names(black_box(&job), T, T).expect("names")).len())
    });
    group.bench_function("instance_values", |b| {
        b.iter(|| black_box(db.label_values("instance", &[], T, T).expect("values")).len())
    });
    group.bench_function("instance_values_of_job", |b| {
        b.iter(|| black_box(db.label_values("instance", black_box(&job), T, T).expect("values")).len())
    });
    let one = [Matcher::equal("id", "4242")];
    group.bench_function("instance_values_of_one_series", |b| {
        b.iter(|| black_box(db.label_values("instance", black_box(&one), T, T).expect("values")).len())
    });
    group.finish();
}

criterion_group!(benches, bench_postings);
criterion_main!(benches);
