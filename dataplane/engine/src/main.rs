//! The `strait-dataplane` process (in progress).
fn main() {}
