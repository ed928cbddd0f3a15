//! Batched datagram I/O backends (in progress).
