//! SIP message layer and SIP transports.
//!
//! # Messages
//!
//! Our own parser (RFC 3261 §7, §20, §25; RFC 4475 and RFC 5118 torture
//! cases), written for robustness rather than speed: signalling is not the
//! per-packet media path. [`Message::parse`] takes one datagram or WebSocket
//! message; on a byte stream, [`StreamFramer`] cuts messages first. A parsed
//! [`Message`] is a [`Request`] or [`Response`]: start line, ordered
//! [`Headers`] (unfolded, compact names resolved, Content-Length removed and
//! recomputed on output) and a body. Parsing never panics, enforces
//! [`Limits`] and validates what every element relies on (Via, From, To,
//! Call-ID, CSeq, Max-Forwards, Content-Length); everything else is parsed on
//! access with the typed views in [`typed`] ([`Via`], [`NameAddr`],
//! [`Contact`], [`CSeq`], [`MediaType`], [`AuthValue`]) and URIs in [`uri`]
//! ([`Uri`], [`SipUri`], [`Host`], [`Params`]). The typed views borrow from
//! the message; `into_owned()` detaches them, `Display` writes them back.
//! Errors are a small `Copy` [`ParseError`] whose text makes a reason phrase;
//! [`error_response`] builds the stateless 400/505/513 for a malformed
//! request when it can be routed.
//!
//! Unknown URI schemes parse as [`Uri::Other`] so the caller can answer 416;
//! unknown methods as [`Method::Extension`] (501); unknown headers are kept.
//!
//! [`check_request`] makes the RFC 3261 §8.2 checks of a UAS (405/501,
//! 416, 420).
//!
//! ```
//! use strait::sip::{HeaderName, Message, Response};
//!
//! let data = b"REGISTER sip:example.com SIP/2.0\r\n\
//! v: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport\r\n\
//! Max-Forwards: 70\r\n\
//! To: <sip:alice@example.com>\r\n\
//! f: \"Alice\" <sip:alice@example.com>;tag=1234\r\n\
//! i: 6ve6dvhrs3sg5hbf6ilg3p\r\n\
//! CSeq: 2 REGISTER\r\n\
//! m: <sip:k4k6pgls@df7jal23ls0d.invalid;transport=ws>;reg-id=1;\
//! +sip.instance=\"<urn:uuid:5d0e8f53-4a4c-4c0e-9f8a-0f0d1a2b3c4d>\";expires=600\r\n\
//! Content-Length: 0\r\n\r\n";
//! let Message::Request(req) = Message::parse(data)? else { unreachable!() };
//! let via = req.headers.top_via()?;
//! assert!(via.host().is_invalid_domain() && via.has_rport());
//! let contacts = req.headers.contacts()?;
//! let binding = contacts[0].addr().expect("not *");
//! assert_eq!(binding.reg_id(), Some(1));
//! assert_eq!(binding.sip_instance().as_deref(), Some("<urn:uuid:5d0e8f53-4a4c-4c0e-9f8a-0f0d1a2b3c4d>"));
//!
//! let mut ok = Response::from_request(&req, 200);
//! ok.set_to_tag("srv1")?;
//! ok.headers.push(HeaderName::Contact, binding.to_string());
//! ok.headers.push(HeaderName::Supported, "outbound, path");
//! let wire = ok.to_bytes(); // Content-Length computed
//! assert!(wire.starts_with(b"SIP/2.0 200 OK\r\nVia: "));
//! # Ok::<(), strait::sip::ParseError>(())
//! ```
//!
//! # Transports
//!
//! [`transport`] runs UDP, TCP, TLS, WS and WSS listeners on tokio and turns
//! every connection into a flow ([`FlowId`]); see its documentation.
//!
//! ```no_run
//! use strait::sip::transport::{SipTransport, TransportConfig, TransportEvent};
//! use strait::sip::{Message, Response};
//!
//! # async fn run() -> std::io::Result<()> {
//! let config = TransportConfig {
//!     udp: vec!["0.0.0.0:5060".parse().unwrap()],
//!     ws: vec!["0.0.0.0:8080".parse().unwrap()],
//!     ..TransportConfig::default()
//! };
//! let (transport, mut events) = SipTransport::start(config).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         TransportEvent::Message { flow, message: Message::Request(req), .. } => {
//!             let _ = transport.send(&flow, &Message::Response(Response::from_request(&req, 501)));
//!         }
//!         TransportEvent::FlowClosed { flow, .. } => { /* drop bindings on `flow` */ }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Fuzzing
//!
//! With the `fuzz` feature, `sip::fuzz::sip_parse` and `sip::fuzz::sip_stream` are the
//! entry points for cargo-fuzz (round-trip and split-invariance checks).

pub mod error;
pub mod framing;
pub mod header;
pub mod message;
mod text;
pub mod transport;
pub mod txn;
pub mod typed;
pub mod uas;
pub mod uri;

#[cfg(feature = "fuzz")]
pub mod fuzz;

pub use error::ParseError;
pub use framing::{StreamFramer, StreamItem};
pub use header::{AsHeaderName, Header, HeaderName, Headers};
pub use message::{
    error_response, is_keepalive, reason_phrase, Framing, Limits, Message, Request, Response,
};
pub use transport::{FlowId, Transport};
pub use typed::{AuthValue, CSeq, Contact, MediaType, Method, NameAddr, Via};
pub use uas::{check_request, UasPolicy};
pub use uri::{AbsoluteUri, Host, Param, Params, SipUri, Uri};
