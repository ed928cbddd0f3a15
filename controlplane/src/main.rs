//! The `strait` binary (in progress).
fn main() {}
