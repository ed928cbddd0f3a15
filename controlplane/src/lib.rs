//! Strait's control plane: SIP edges (WS/WSS toward browsers, UDP/TCP/TLS
//! toward legacy SIP), registrar, B2BUA, SDP rewriting, ICE and DTLS, the
//! rtpengine ng protocol, and the rules it pushes to the data plane.
//!
//! Protocol logic is sans-IO (time and bytes passed in); the tokio runtime
//! around it only moves bytes.

pub mod auth;
pub mod config;
pub mod dataplane;
pub mod dtls;
pub mod media;
pub mod ng;
pub mod registrar;
pub mod sdp;
pub mod signalling;
pub mod sip;
