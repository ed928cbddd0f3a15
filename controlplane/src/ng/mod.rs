//! rtpengine's "ng" control protocol, so that Kamailio's and OpenSIPS's
//! `rtpengine` modules can use Strait as their media proxy.
//!
//! The proxy sends `<cookie> <bencoded dictionary>` over UDP (or TCP) and
//! gets `<cookie> <bencoded reply>` back. This module is everything up to
//! the media engine:
//!
//! - [`bencode`]: borrowed, bounded bencode decoding and encoding;
//! - [`message`]: framing and the typed [`Request`] (ping, offer, answer,
//!   delete, query, list, statistics) with all the options Kamailio and
//!   OpenSIPS send, in each of the forms they send them;
//! - [`reply`]: reply building with rtpengine's keys and error strings (the
//!   table of strings is there);
//! - [`cache`]: the reply cache that answers retransmissions without running
//!   a command twice;
//! - [`allow`]: the peer allow-list (ng has no authentication);
//! - [`stream`]: message boundaries on a TCP stream;
//! - [`NgServer`]: sans-IO glue: datagram in, reply datagram out, calling an
//!   [`NgHandler`];
//! - [`runtime`]: UDP and TCP listeners on tokio around an [`NgServer`].
//!
//! The [`NgHandler`] trait is the boundary with the media session engine
//! (SDP rewriting, ports, the data plane): it receives typed requests and
//! returns typed results; nothing here touches media.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use strait::ng::reply::{CallInfo, DeleteReply, NgError, SdpReply, Statistics};
//! use strait::ng::{Context, Delete, List, NgConfig, NgHandler, NgServer, NgTransport};
//! use strait::ng::{OfferAnswer, Query};
//!
//! struct NoCalls;
//! impl NgHandler for NoCalls {
//!     fn offer(&mut self, _: &Context, o: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
//!         Ok(SdpReply { sdp: o.sdp.to_string(), warning: None })
//!     }
//!     fn answer(&mut self, _: &Context, _: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
//!         Err(NgError::UnknownCallId)
//!     }
//!     fn delete(&mut self, _: &Context, _: &Delete<'_>) -> Result<DeleteReply, NgError> {
//!         Err(NgError::CallNotFound)
//!     }
//!     fn query(&mut self, _: &Context, _: &Query<'_>) -> Result<CallInfo, NgError> {
//!         Err(NgError::UnknownCallId)
//!     }
//!     fn list(&mut self, _: &Context, _: &List) -> Result<Vec<String>, NgError> {
//!         Ok(Vec::new())
//!     }
//!     fn statistics(&mut self, _: &Context) -> Result<Statistics, NgError> {
//!         Ok(Statistics::default())
//!     }
//! }
//!
//! let mut server = NgServer::new(NgConfig::default());
//! let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
//! let reply = server.handle(&mut NoCalls, NgTransport::Udp, peer, b"5323_1 d7:command4:pinge", Instant::now());
//! assert_eq!(reply.as_deref(), Some(&b"5323_1 d6:result4:ponge"[..]));
//! ```
//!
//! # Fuzzing
//!
//! With the `fuzz` feature, `ng::fuzz::ng_message` and `ng::fuzz::bencode`
//! are the entry points for cargo-fuzz.

#![deny(missing_docs)]

pub mod allow;
pub mod bencode;
pub mod cache;
pub mod calls;
pub mod message;
pub mod reply;
pub mod runtime;
pub mod stream;

#[cfg(feature = "fuzz")]
pub mod fuzz;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub use allow::{check_listen, AllowList, IpNet};
pub use cache::ReplyCache;
pub use message::{
    parse_request, Command, Delete, Frame, List, OfferAnswer, Options, Query, Request, RequestError,
};
pub use reply::{
    CallInfo, CommandCounts, ControlStatistics, DeleteReply, LoadLimit, NgError, SdpReply,
    Statistics,
};
pub use runtime::NgRuntime;

use bencode::{Limits, Owned};

/// Which transport a request came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NgTransport {
    /// A UDP datagram.
    Udp,
    /// A message on a TCP connection.
    Tcp,
}

/// What a handler learns about a request besides the request itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// The proxy's address.
    pub peer: SocketAddr,
    /// The time the request is handled (the caller's clock).
    pub now: Instant,
    /// The transport it came over.
    pub transport: NgTransport,
}

/// The media session engine, as the ng protocol sees it. Each method gets
/// the typed request and returns the typed result; [`NgServer`] turns both
/// into protocol messages, answers `ping` itself, and makes sure a
/// retransmitted request does not reach the handler twice.
///
/// Errors are [`NgError`]s; their [`NgError::reason`] is what the proxy
/// sees. Warnings about options that were not understood are added by the
/// server ([`Options::ignored`]); a handler adds its own in the reply's
/// `warning`.
pub trait NgHandler {
    /// An SDP offer: set up (or update) the call and return the rewritten
    /// SDP. An over-limit refusal is [`NgError::LoadLimit`].
    fn offer(&mut self, ctx: &Context, req: &OfferAnswer<'_>) -> Result<SdpReply, NgError>;

    /// The SDP answer (`req.to_tag` is set): complete the call and return
    /// the rewritten SDP; [`NgError::UnknownCallId`] if there was no offer.
    fn answer(&mut self, ctx: &Context, req: &OfferAnswer<'_>) -> Result<SdpReply, NgError>;

    /// Tear down the call (or the branch/dialogue the tags select).
    /// [`NgError::CallNotFound`] when there is nothing to delete: the server
    /// makes it a warning unless the request said `fatal`.
    fn delete(&mut self, ctx: &Context, req: &Delete<'_>) -> Result<DeleteReply, NgError>;

    /// One call's parties, media and counters.
    fn query(&mut self, ctx: &Context, req: &Query<'_>) -> Result<CallInfo, NgError>;

    /// Call-ids in progress (the server keeps at most `req.limit`).
    fn list(&mut self, ctx: &Context, req: &List) -> Result<Vec<String>, NgError>;

    /// Session and traffic totals (the server adds its own command counts).
    fn statistics(&mut self, ctx: &Context) -> Result<Statistics, NgError>;
}

/// Settings of an [`NgServer`].
#[derive(Clone, Debug, PartialEq)]
pub struct NgConfig {
    /// Longest message accepted; longer ones get `Message too large`.
    pub max_message_bytes: usize,
    /// How long replies are kept for retransmissions (0 disables the cache).
    pub reply_cache_ttl: Duration,
    /// Most replies kept.
    pub reply_cache_max_entries: usize,
    /// Most bytes of replies kept.
    pub reply_cache_max_bytes: usize,
    /// Peers allowed (empty: all).
    pub allow: AllowList,
    /// Bencode limits (`max_size` is lowered to `max_message_bytes`).
    pub limits: Limits,
}

impl Default for NgConfig {
    /// 64 KiB messages, replies kept 30 s (at most 10,000 and 32 MiB), every
    /// peer allowed.
    fn default() -> Self {
        NgConfig {
            max_message_bytes: 65_536,
            reply_cache_ttl: Duration::from_secs(30),
            reply_cache_max_entries: 10_000,
            reply_cache_max_bytes: 32 << 20,
            allow: AllowList::default(),
            limits: Limits::default(),
        }
    }
}

impl NgConfig {
    /// From the `[ng]` section of the configuration.
    pub fn from_config(c: &crate::config::Ng) -> NgConfig {
        NgConfig {
            max_message_bytes: c.max_message_bytes,
            reply_cache_ttl: Duration::from_secs(u64::from(c.reply_cache_s)),
            allow: AllowList::new(c.allow.clone()),
            ..NgConfig::default()
        }
    }
}

/// What an [`NgServer`] counted. Every input is counted once in `received`
/// and then either dropped (one of the `dropped_*`), refused (`too_large`
/// or one of the request-error counters, answered with an error) or
/// answered from the cache (`retransmissions`) or by a command
/// (`commands`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NgCounters {
    /// Datagrams (or stream messages) handled.
    pub received: u64,
    /// Replies produced.
    pub replies: u64,
    /// Dropped: the peer is not on the allow-list.
    pub dropped_not_allowed: u64,
    /// Dropped: no cookie (or an overlong one); nothing to answer with.
    pub dropped_no_cookie: u64,
    /// Answered `Message too large`.
    pub too_large: u64,
    /// Answered from the reply cache without running the command again.
    pub retransmissions: u64,
    /// Request errors: nothing after the cookie, or not a dictionary.
    pub invalid_format: u64,
    /// Request errors: the dictionary does not decode (or exceeds limits).
    pub decode_errors: u64,
    /// Request errors: no `command`.
    pub no_command: u64,
    /// Request errors: a command Strait does not implement.
    pub unrecognized_commands: u64,
    /// Request errors: a required key (`sdp`, `call-id`, tags) is missing.
    pub missing_keys: u64,
    /// Request errors: a value is unusable (not UTF-8, negative limit).
    pub invalid_values: u64,
    /// Commands the handler failed (error replies).
    pub handler_errors: u64,
    /// Offers refused with a `load limit` reply.
    pub load_limited: u64,
    /// Deletes of unknown calls answered with a warning.
    pub delete_not_found: u64,
    /// `ok` replies that carried a warning.
    pub warnings: u64,
    /// Replies the cache did not keep or dropped early (bounds).
    pub cache_evictions: u64,
    /// Commands run, and error replies, in total.
    pub commands: CommandCounts,
}

/// Per-proxy command counts are kept for this many proxy addresses; others
/// count in the totals only.
pub const MAX_TRACKED_PROXIES: usize = 64;

/// The sans-IO ng server: checks the peer, answers retransmissions from the
/// cache, parses the request, calls the handler and builds the reply.
#[derive(Debug)]
pub struct NgServer {
    config: NgConfig,
    cache: ReplyCache,
    counters: NgCounters,
    proxies: HashMap<IpAddr, CommandCounts>,
}

impl NgServer {
    /// A server with these settings.
    pub fn new(config: NgConfig) -> Self {
        let cache = ReplyCache::new(
            config.reply_cache_ttl,
            config.reply_cache_max_entries,
            config.reply_cache_max_bytes,
        );
        NgServer {
            config,
            cache,
            counters: NgCounters::default(),
            proxies: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &NgConfig {
        &self.config
    }

    /// The counters so far.
    pub fn counters(&self) -> NgCounters {
        NgCounters {
            cache_evictions: self.cache.evicted(),
            ..self.counters
        }
    }

    /// Per-proxy and total command counts (`controlstatistics`).
    pub fn control_statistics(&self) -> ControlStatistics {
        let mut proxies: Vec<_> = self.proxies.iter().map(|(ip, c)| (*ip, *c)).collect();
        proxies.sort_by_key(|(ip, _)| *ip);
        ControlStatistics {
            proxies,
            totals: self.counters.commands,
        }
    }

    /// Drops cached replies older than the TTL (also done on every
    /// request; call it when idle to free memory).
    pub fn expire(&mut self, now: Instant) {
        self.cache.expire(now);
    }

    /// Handles one datagram (or one message framed off a stream) from
    /// `peer` at `now`. Returns the reply to send back, or `None` when the
    /// input cannot or must not be answered (counted in the `dropped_*`
    /// counters).
    pub fn handle<H: NgHandler + ?Sized>(
        &mut self,
        handler: &mut H,
        transport: NgTransport,
        peer: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Option<Vec<u8>> {
        self.counters.received += 1;
        if !self.config.allow.permits(peer.ip()) {
            self.counters.dropped_not_allowed += 1;
            return None;
        }
        let Some(frame) = Frame::split(data) else {
            self.counters.dropped_no_cookie += 1;
            return None;
        };
        let cookie = frame.cookie;
        if data.len() > self.config.max_message_bytes {
            self.counters.too_large += 1;
            self.count_error(peer.ip());
            return Some(self.send(cookie, &reply::error("Message too large")));
        }
        if let Some(cached) = self.cache.get(peer, cookie, now) {
            let cached = cached.to_vec();
            self.counters.retransmissions += 1;
            self.counters.replies += 1;
            return Some(cached);
        }
        let limits = Limits {
            max_size: self
                .config
                .limits
                .max_size
                .min(self.config.max_message_bytes),
            ..self.config.limits
        };
        let request = match parse_request(frame.payload, &limits) {
            Ok(r) => r,
            Err(e) => {
                let c = &mut self.counters;
                match e {
                    RequestError::NoPayload | RequestError::InvalidFormat => c.invalid_format += 1,
                    RequestError::Decode(_) => c.decode_errors += 1,
                    RequestError::NoCommand => c.no_command += 1,
                    RequestError::UnrecognizedCommand => c.unrecognized_commands += 1,
                    RequestError::NoSdp
                    | RequestError::NoCallId
                    | RequestError::NoFromTag
                    | RequestError::NoToTag => c.missing_keys += 1,
                    RequestError::SdpNotUtf8
                    | RequestError::NotUtf8 { .. }
                    | RequestError::InvalidLimit => c.invalid_values += 1,
                }
                self.count_error(peer.ip());
                return Some(self.send(cookie, &reply::error(e.reason())));
            }
        };
        let command = request.command();
        self.count_command(peer.ip(), command);
        let ctx = Context {
            peer,
            now,
            transport,
        };
        let reply = self.dispatch(handler, &ctx, &request);
        if reply.get("result").and_then(bencode::Value::as_str) == Some("error") {
            self.counters.handler_errors += 1;
            self.count_error(peer.ip());
        } else if reply.get("warning").is_some() {
            self.counters.warnings += 1;
        }
        let bytes = self.send(cookie, &reply);
        if command != Command::Ping {
            self.cache.insert(peer, cookie, bytes.clone(), now);
        }
        Some(bytes)
    }

    fn send(&mut self, cookie: &[u8], reply: &Owned) -> Vec<u8> {
        self.counters.replies += 1;
        reply::frame(cookie, reply)
    }

    fn dispatch<H: NgHandler + ?Sized>(
        &mut self,
        handler: &mut H,
        ctx: &Context,
        request: &Request<'_>,
    ) -> Owned {
        match request {
            Request::Ping => reply::pong(),
            Request::Offer(o) | Request::Answer(o) => {
                let result = if matches!(request, Request::Offer(_)) {
                    handler.offer(ctx, o)
                } else {
                    handler.answer(ctx, o)
                };
                match result {
                    Ok(r) => {
                        let mut d = reply::sdp(&r);
                        if let Some(w) = o.options.ignored_warning() {
                            reply::add_warning(&mut d, &w);
                        }
                        d
                    }
                    Err(NgError::LoadLimit(l))
                        if o.options.supports_load_limit
                            && matches!(request, Request::Offer(_)) =>
                    {
                        self.counters.load_limited += 1;
                        reply::load_limit(l)
                    }
                    Err(e) => reply::error(e.reason()),
                }
            }
            Request::Delete(d) => {
                let mut out = match handler.delete(ctx, d) {
                    Ok(r) => reply::delete(&r),
                    Err(NgError::CallNotFound) if !d.fatal => {
                        self.counters.delete_not_found += 1;
                        let mut r = reply::ok();
                        reply::add_warning(&mut r, NgError::CallNotFound.reason());
                        r
                    }
                    Err(e) => return reply::error(e.reason()),
                };
                if let Some(w) = message::ignored_warning(&d.ignored) {
                    reply::add_warning(&mut out, &w);
                }
                out
            }
            Request::Query(q) => match handler.query(ctx, q) {
                Ok(info) => reply::query(&info),
                Err(e) => reply::error(e.reason()),
            },
            Request::List(l) => match handler.list(ctx, l) {
                Ok(mut calls) => {
                    calls.truncate(usize::try_from(l.limit).unwrap_or(usize::MAX));
                    reply::list(&calls)
                }
                Err(e) => reply::error(e.reason()),
            },
            Request::Statistics => match handler.statistics(ctx) {
                Ok(s) => reply::statistics(&s, &self.control_statistics()),
                Err(e) => reply::error(e.reason()),
            },
        }
    }

    fn proxy(&mut self, ip: IpAddr) -> Option<&mut CommandCounts> {
        let ip = ip.to_canonical();
        if !self.proxies.contains_key(&ip) && self.proxies.len() >= MAX_TRACKED_PROXIES {
            return None;
        }
        Some(self.proxies.entry(ip).or_default())
    }

    fn count_command(&mut self, ip: IpAddr, command: Command) {
        fn bump(c: &mut CommandCounts, command: Command) {
            let n = match command {
                Command::Ping => &mut c.ping,
                Command::Offer => &mut c.offer,
                Command::Answer => &mut c.answer,
                Command::Delete => &mut c.delete,
                Command::Query => &mut c.query,
                Command::List => &mut c.list,
                Command::Statistics => &mut c.statistics,
            };
            *n += 1;
        }
        bump(&mut self.counters.commands, command);
        if let Some(p) = self.proxy(ip) {
            bump(p, command);
        }
    }

    fn count_error(&mut self, ip: IpAddr) {
        self.counters.commands.errors += 1;
        if let Some(p) = self.proxy(ip) {
            p.errors += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bencode::{decode, Value};
    use super::reply::StreamStats;
    use super::*;

    /// Records every call; knows the call-ids it was offered.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<String>,
        known: Vec<String>,
        limit: Option<LoadLimit>,
    }

    impl NgHandler for Recorder {
        fn offer(&mut self, _: &Context, o: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
            self.calls.push(format!("offer {}", o.call_id));
            if let Some(l) = self.limit {
                return Err(NgError::LoadLimit(l));
            }
            self.known.push(o.call_id.to_string());
            Ok(SdpReply {
                sdp: format!("rewritten {}", o.sdp),
                warning: None,
            })
        }
        fn answer(&mut self, _: &Context, o: &OfferAnswer<'_>) -> Result<SdpReply, NgError> {
            self.calls.push(format!("answer {}", o.call_id));
            if !self.known.iter().any(|c| c == o.call_id) {
                return Err(NgError::UnknownCallId);
            }
            Ok(SdpReply {
                sdp: "answered".into(),
                warning: Some("handler says hi".into()),
            })
        }
        fn delete(&mut self, _: &Context, d: &Delete<'_>) -> Result<DeleteReply, NgError> {
            self.calls.push(format!("delete {}", d.call_id));
            let before = self.known.len();
            self.known.retain(|c| c != d.call_id);
            if self.known.len() == before {
                return Err(NgError::CallNotFound);
            }
            Ok(DeleteReply {
                stats: Some(CallInfo {
                    created: 1,
                    last_signal: 2,
                    totals_rtp: StreamStats {
                        packets: 10,
                        bytes: 1600,
                        errors: 0,
                    },
                    ..Default::default()
                }),
                warning: None,
            })
        }
        fn query(&mut self, _: &Context, q: &Query<'_>) -> Result<CallInfo, NgError> {
            self.calls.push(format!("query {}", q.call_id));
            Err(NgError::UnknownCallId)
        }
        fn list(&mut self, _: &Context, _: &List) -> Result<Vec<String>, NgError> {
            self.calls.push("list".into());
            Ok((0..50).map(|i| format!("call{i}")).collect())
        }
        fn statistics(&mut self, _: &Context) -> Result<Statistics, NgError> {
            self.calls.push("statistics".into());
            Ok(Statistics::default())
        }
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn msg(cookie: &str, d: &Owned) -> Vec<u8> {
        reply::frame(cookie.as_bytes(), d)
    }

    fn offer(call: &str) -> Owned {
        Owned::dict()
            .with("command", Owned::str("offer"))
            .with("call-id", Owned::str(call))
            .with("from-tag", Owned::str("ft"))
            .with("sdp", Owned::str("v=0\r\n"))
            .with("supports", Value::List(vec![Owned::str("load limit")]))
    }

    /// Splits a reply into cookie and decoded dictionary (owned).
    fn parse_reply(bytes: &[u8]) -> (String, Owned) {
        let f = Frame::split(bytes).expect("cookie");
        let v = decode(f.payload, &Limits::default()).expect("reply decodes");
        (
            String::from_utf8(f.cookie.to_vec()).unwrap(),
            v.to_owned_value(),
        )
    }

    fn get<'v>(v: &'v Owned, key: &str) -> Option<&'v str> {
        v.get(key).and_then(Value::as_str)
    }

    #[test]
    fn retransmission_is_answered_from_the_cache() {
        let mut s = NgServer::new(NgConfig::default());
        let mut h = Recorder::default();
        let t0 = Instant::now();
        let m = msg("c1", &offer("call-1"));
        let r1 = s.handle(&mut h, NgTransport::Udp, peer(), &m, t0).unwrap();
        let r2 = s
            .handle(
                &mut h,
                NgTransport::Udp,
                peer(),
                &m,
                t0 + Duration::from_secs(1),
            )
            .unwrap();
        assert_eq!(r1, r2);
        assert_eq!(h.calls, vec!["offer call-1"], "the handler ran once");
        let (cookie, v) = parse_reply(&r1);
        assert_eq!(cookie, "c1");
        assert_eq!(get(&v, "result"), Some("ok"));
        assert_eq!(get(&v, "sdp"), Some("rewritten v=0\r\n"));
        let c = s.counters();
        assert_eq!((c.received, c.replies, c.retransmissions), (2, 2, 1));
        assert_eq!(c.commands.offer, 1);

        // Another peer with the same cookie is another request.
        let other: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        s.handle(&mut h, NgTransport::Udp, other, &m, t0).unwrap();
        assert_eq!(h.calls.len(), 2);

        // After the TTL the command runs again.
        s.handle(
            &mut h,
            NgTransport::Udp,
            peer(),
            &m,
            t0 + Duration::from_secs(31),
        )
        .unwrap();
        assert_eq!(h.calls.len(), 3);
    }

    #[test]
    fn ping_errors_and_drops() {
        let mut s = NgServer::new(NgConfig::default());
        let mut h = Recorder::default();
        let now = Instant::now();
        let mut go = |data: &[u8]| s.handle(&mut h, NgTransport::Udp, peer(), data, now);
        assert_eq!(
            go(b"5323_1 d7:command4:pinge").as_deref(),
            Some(&b"5323_1 d6:result4:ponge"[..])
        );
        assert_eq!(go(b"no-cookie-at-all"), None);
        assert_eq!(go(b" d7:command4:pinge"), None);
        let r = go(b"c2 d7:command12:play media 2e").unwrap();
        let (_, v) = parse_reply(&r);
        assert_eq!(get(&v, "result"), Some("error"));
        assert_eq!(get(&v, "error-reason"), Some("Unrecognized command"));
        assert_eq!(v.as_dict().unwrap().len(), 2, "nothing else on errors");
        let r = go(b"c3 d7:command5:querye").unwrap();
        assert_eq!(
            get(&parse_reply(&r).1, "error-reason"),
            Some("No call-id in message")
        );
        let r = go(b"c4 d7:command5:query7:call-id1:xe").unwrap();
        assert_eq!(
            get(&parse_reply(&r).1, "error-reason"),
            Some("Unknown call-id")
        );
        let r = go(b"c5 garbage").unwrap();
        assert_eq!(
            get(&parse_reply(&r).1, "error-reason"),
            Some("Invalid NG data format")
        );
        let r = go(b"c6 d7:command").unwrap();
        assert_eq!(
            get(&parse_reply(&r).1, "error-reason"),
            Some("Could not decode bencode dictionary")
        );
        let c = s.counters();
        assert_eq!(c.dropped_no_cookie, 2);
        assert_eq!(c.unrecognized_commands, 1);
        assert_eq!(c.missing_keys, 1);
        assert_eq!(c.handler_errors, 1);
        assert_eq!(c.invalid_format, 1);
        assert_eq!(c.decode_errors, 1);
        assert_eq!(c.commands.errors, 5);
        assert_eq!((c.commands.ping, c.commands.query), (1, 1));
        assert_eq!(c.received, 8);
        assert_eq!(c.replies, 6);
    }

    #[test]
    fn oversized_messages_get_an_error() {
        let mut s = NgServer::new(NgConfig {
            max_message_bytes: 100,
            ..NgConfig::default()
        });
        let mut h = Recorder::default();
        let big = msg("big", &offer(&"x".repeat(200)));
        let r = s
            .handle(&mut h, NgTransport::Udp, peer(), &big, Instant::now())
            .unwrap();
        assert_eq!(
            get(&parse_reply(&r).1, "error-reason"),
            Some("Message too large")
        );
        assert!(h.calls.is_empty());
        assert_eq!(s.counters().too_large, 1);
    }

    #[test]
    fn peers_off_the_allow_list_are_dropped() {
        let mut s = NgServer::new(NgConfig {
            allow: AllowList::parse(&["10.0.0.0/8"]).unwrap(),
            ..NgConfig::default()
        });
        let mut h = Recorder::default();
        let now = Instant::now();
        let ping = b"c d7:command4:pinge";
        assert_eq!(s.handle(&mut h, NgTransport::Udp, peer(), ping, now), None);
        let inside: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert!(s
            .handle(&mut h, NgTransport::Tcp, inside, ping, now)
            .is_some());
        assert_eq!(s.counters().dropped_not_allowed, 1);
    }

    #[test]
    fn answer_delete_and_warnings() {
        let mut s = NgServer::new(NgConfig::default());
        let mut h = Recorder::default();
        let now = Instant::now();
        let mut go = |c: &str, d: Owned| {
            let r = s
                .handle(&mut h, NgTransport::Udp, peer(), &msg(c, &d), now)
                .unwrap();
            parse_reply(&r).1
        };
        let ans = offer("nope")
            .with("command", Owned::str("answer"))
            .with("to-tag", Owned::str("tt"));
        // `command` appears twice; the first ("offer") counts. Build a clean one.
        let ans = Value::Dict(
            ans.as_dict()
                .unwrap()
                .iter()
                .filter(|(k, _)| k != b"command")
                .cloned()
                .collect(),
        )
        .with("command", Owned::str("answer"));
        let v = go("a1", ans.clone());
        assert_eq!(get(&v, "error-reason"), Some("Unknown call-id"));

        let v = go(
            "o1",
            offer("nope").with(
                "flags",
                Value::List(vec![Owned::str("trust-address"), Owned::str("bogus")]),
            ),
        );
        assert_eq!(get(&v, "result"), Some("ok"));
        assert_eq!(
            get(&v, "warning"),
            Some("Unsupported options ignored: flag 'bogus'")
        );
        let v = go(
            "a2",
            ans.with("rtcp-mux", Value::List(vec![Owned::str("sideways")])),
        );
        assert_eq!(get(&v, "sdp"), Some("answered"));
        assert_eq!(
            get(&v, "warning"),
            Some("handler says hi; Unsupported options ignored: rtcp-mux 'sideways'")
        );

        let del = |call: &str| {
            Owned::dict()
                .with("command", Owned::str("delete"))
                .with("call-id", Owned::str(call))
                .with("from-tag", Owned::str("ft"))
        };
        let v = go("d1", del("nope"));
        assert_eq!(get(&v, "result"), Some("ok"));
        assert_eq!(
            v.get("totals")
                .and_then(|t| t.get("RTP"))
                .and_then(|r| r.get("bytes"))
                .and_then(Value::as_int),
            Some(1600)
        );
        let v = go("d2", del("nope"));
        assert_eq!(get(&v, "result"), Some("ok"));
        assert_eq!(
            get(&v, "warning"),
            Some("Call-ID not found or tags didn't match")
        );
        let v = go(
            "d3",
            del("nope").with("flags", Value::List(vec![Owned::str("fatal")])),
        );
        assert_eq!(get(&v, "result"), Some("error"));
        assert_eq!(
            get(&v, "error-reason"),
            Some("Call-ID not found or tags didn't match")
        );
        let c = s.counters();
        assert_eq!((c.delete_not_found, c.warnings), (1, 3));
    }

    #[test]
    fn load_limit_reply_only_when_supported() {
        let mut s = NgServer::new(NgConfig::default());
        let mut h = Recorder {
            limit: Some(LoadLimit::Cpu),
            ..Recorder::default()
        };
        let now = Instant::now();
        let r = s
            .handle(
                &mut h,
                NgTransport::Udp,
                peer(),
                &msg("l1", &offer("c")),
                now,
            )
            .unwrap();
        let (_, v) = parse_reply(&r);
        assert_eq!(get(&v, "result"), Some("load limit"));
        assert_eq!(get(&v, "message"), Some("CPU usage limit exceeded"));
        let legacy = Value::Dict(
            offer("c")
                .as_dict()
                .unwrap()
                .iter()
                .filter(|(k, _)| k != b"supports")
                .cloned()
                .collect(),
        );
        let r = s
            .handle(&mut h, NgTransport::Udp, peer(), &msg("l2", &legacy), now)
            .unwrap();
        let (_, v) = parse_reply(&r);
        assert_eq!(get(&v, "result"), Some("error"));
        assert_eq!(
            get(&v, "error-reason"),
            Some("Parallel session limit reached")
        );
        assert_eq!(s.counters().load_limited, 1);
    }

    #[test]
    fn list_is_truncated_and_statistics_carry_control_counts() {
        let mut s = NgServer::new(NgConfig::default());
        let mut h = Recorder::default();
        let now = Instant::now();
        let l = Owned::dict()
            .with("command", Owned::str("list"))
            .with("limit", Value::Int(3));
        let r = s
            .handle(&mut h, NgTransport::Udp, peer(), &msg("l", &l), now)
            .unwrap();
        let (_, v) = parse_reply(&r);
        assert_eq!(
            v.get("calls").and_then(Value::as_list).map(<[_]>::len),
            Some(3)
        );
        let st = Owned::dict().with("command", Owned::str("statistics"));
        let r = s
            .handle(&mut h, NgTransport::Udp, peer(), &msg("s", &st), now)
            .unwrap();
        let (_, v) = parse_reply(&r);
        let ctl = v
            .get("statistics")
            .and_then(|s| s.get("controlstatistics"))
            .unwrap();
        assert_eq!(ctl.get("totallistcount").and_then(Value::as_int), Some(1));
        assert_eq!(ctl.get("totalstatistics").and_then(Value::as_int), Some(1));
        let proxies = ctl.get("proxies").and_then(Value::as_list).unwrap();
        assert_eq!(
            proxies[0].get("proxy").and_then(Value::as_str),
            Some("127.0.0.1")
        );
    }

    #[test]
    fn per_proxy_counts_are_bounded() {
        let mut s = NgServer::new(NgConfig::default());
        let mut h = Recorder::default();
        let now = Instant::now();
        for i in 0..200u16 {
            let p = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 5000));
            s.handle(&mut h, NgTransport::Udp, p, b"c d7:command4:pinge", now);
        }
        let ctl = s.control_statistics();
        assert_eq!(ctl.proxies.len(), MAX_TRACKED_PROXIES);
        assert_eq!(ctl.totals.ping, 200);
    }
}
