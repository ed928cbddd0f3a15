//! Criterion micro-benchmarks of Strait's hot functions live in `benches/`;
//! run them with `cargo bench -p strait-bench`. Figures go to BENCHMARKS.md.
