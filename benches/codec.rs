//! Placeholder replaced by the codec bench.
fn main() {}
