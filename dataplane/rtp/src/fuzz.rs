//! Fuzz entry points, compiled only with the `fuzz` feature.
