//! `strait-loadtest`: Strait's capacity-planning tool.
//!
//! It sets up calls on a media relay through the ng control protocol
//! (rtpengine's, also spoken by Strait), sends paced RTP both ways on every
//! call (one packet per 20 ms per direction, absolute deadlines), measures
//! per direction loss, duplicates, reordering, one-way latency and RFC 3550
//! jitter, samples the target's and its own CPU from `/proc`, and ramps the
//! number of concurrent calls until a service level breaks (default: loss
//! above 0.1 % or p99 latency above 5 ms). It refuses to publish a capacity
//! figure measured with a saturated generator and extrapolates per core
//! when one generator core cannot push the target to its break point.
//!
//! Layout: the protocol and statistics logic is sans-IO ([`bencode`],
//! [`ng`]'s codec, [`sdp`], [`packet`], [`stats`], [`ramp`], [`cpu`]'s
//! parsers, [`report`], [`cli`]); [`generator`], [`target`], [`scenario`]
//! and [`run`] are the runtime around it. Traffic goes only to loopback
//! (or a network namespace the binary creates with `--netns`).
//!
//! The `webrtc` scenario's leg B is a simulated browser: [`stun`] (sans-IO
//! ICE STUN) and [`webrtc`] (ICE + DTLS-SRTP state machine, its driver, and
//! the responder the generator threads use during traffic).

pub mod bencode;
pub mod cli;
pub mod cpu;
pub mod generator;
pub mod ng;
pub mod packet;
pub mod ramp;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sdp;
pub mod sip;
pub mod stats;
pub mod stun;
pub mod target;
pub mod webrtc;

#[cfg(feature = "fuzz")]
pub mod fuzz;
