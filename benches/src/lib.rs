//! Vigil's benchmarks: criterion micro-benchmarks live in `benches/`.
