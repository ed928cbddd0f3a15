//! The contract between Strait's control plane and data plane.
//!
//! The two planes are separate processes joined by one named shared-memory
//! region ([`region`]): per data-plane worker a pair of single-producer
//! single-consumer rings ([`ring`]) carrying fixed-layout messages ([`abi`]):
//! rules down (add/update/remove leg, send this packet), events up (punted
//! packets, leg latched, timed out), plus a table of per-leg counters the
//! control plane reads without stopping a worker.
//!
//! Attaching checks the ABI version and the size of every message struct, so
//! mismatched builds refuse each other with an error naming both versions.
//! Ring positions live in the shared memory, so a control plane that is
//! killed and restarted re-attaches where its predecessor stopped while the
//! workers keep forwarding.
//!
//! This is the only crate the control plane imports from the data plane.

pub mod abi;
pub mod control;
pub mod region;
pub mod ring;
