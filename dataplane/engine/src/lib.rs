//! Strait's data plane (in progress).
pub mod io;
pub mod pipeline;
pub mod stun;
pub mod worker;
