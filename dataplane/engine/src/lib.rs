//! Strait's data plane: the process that carries every call.
//!
//! - [`pipeline`]: one worker's sans-IO core, its leg table and the path of
//!   every packet (demux, ICE-lite, SRTP, RTCP/NACK, rewriting,
//!   transcoding).
//! - [`worker`]: the thread around a core: pinned, owning an I/O backend
//!   and its pair of rule/event rings.
//! - [`io`]: the io_uring and recvmmsg/sendmmsg backends.
//! - [`stun`]: the ICE-lite responder's STUN.
//!
//! The control plane drives it only through `strait_rules` (the shared
//! memory region and its rings).
pub mod io;
pub mod pipeline;
pub mod stun;
pub mod worker;

#[cfg(feature = "fuzz")]
pub mod fuzz;
