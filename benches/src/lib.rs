//! Vigil's benchmarks: the `vigil-load` harness (workload, write and query phases,
//! server runs, BENCHMARKS.md) here, criterion micro-benchmarks in `benches/`.

pub mod compare;
pub mod http;
pub mod procfs;
pub mod queries;
pub mod report;
pub mod rng;
pub mod run;
pub mod server;
pub mod stats;
pub mod workload;
pub mod write;
