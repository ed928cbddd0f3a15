//! Fuzz entry points (feature `fuzz`), called by the cargo-fuzz crate.
//!
//! They must never panic on any input; they panic (assert) only when an
//! invariant of the parser is broken.

use super::framing::{StreamFramer, StreamItem};
use super::message::{error_response, Framing, Limits, Message};
use super::typed::{Contact, NameAddr, Via};
use super::HeaderName;

/// Parses `data` as one datagram. An accepted message must serialize to
/// bytes that parse back (as a stream message, so with Content-Length) to an
/// equal message, serialization must be a fixpoint, and the typed views of
/// its headers must round-trip through `Display` too. A rejected one goes
/// through [`error_response`].
pub fn sip_parse(data: &[u8]) {
    let limits = Limits::default();
    let msg = match Message::parse_with(data, &limits, Framing::Datagram) {
        Ok(m) => m,
        Err(e) => {
            if let Some(r) = error_response(data, e, &limits) {
                let _ = r.to_bytes();
            }
            return;
        }
    };
    let bytes = msg.to_bytes();
    // Serialization may grow a message (compact names expanded, a
    // Content-Length line added), so re-parse with room to spare.
    let relaxed = Limits {
        max_message_size: bytes.len().max(limits.max_message_size),
        max_headers: limits.max_headers + 1,
    };
    let again = Message::parse_with(&bytes, &relaxed, Framing::Stream)
        .expect("a serialized message parses");
    assert_eq!(
        msg, again,
        "parse -> serialize -> parse changed the message"
    );
    assert_eq!(bytes, again.to_bytes(), "serialization is not a fixpoint");

    let h = msg.headers();
    for v in h.vias().expect("validated Via") {
        let s = v.to_string();
        assert_eq!(Via::parse(&s).as_ref(), Ok(&v), "Via round trip: {s}");
    }
    for n in [
        h.from_addr().expect("validated From"),
        h.to_addr().expect("validated To"),
    ] {
        let s = n.to_string();
        assert_eq!(
            NameAddr::parse(&s).as_ref(),
            Ok(&n),
            "name-addr round trip: {s}"
        );
    }
    if let Ok(contacts) = h.contacts() {
        for c in contacts {
            let s = c.to_string();
            assert_eq!(
                Contact::parse(&s).as_ref(),
                Ok(&c),
                "Contact round trip: {s}"
            );
        }
    }
    for list in [h.routes(), h.record_routes(), h.paths()]
        .into_iter()
        .flatten()
    {
        for n in list {
            let s = n.to_string();
            assert_eq!(
                NameAddr::parse(&s).as_ref(),
                Ok(&n),
                "route round trip: {s}"
            );
        }
    }
    let _ = h.content_type();
    let _ = h.expires();
    let _ = h.supported();
    let _ = h.auth_values(HeaderName::Authorization);
    if let Message::Request(r) = &msg {
        let s = r.uri.to_string();
        assert_eq!(
            super::Uri::parse(&s).as_ref(),
            Ok(&r.uri),
            "URI round trip: {s}"
        );
    }
}

/// Feeds `data` to a [`StreamFramer`] in chunks (sizes taken from the data
/// itself) and checks that the items match feeding it in one piece, and that
/// every framed message is exactly what [`Message::parse_with`] accepts or
/// rejects in stream mode without panicking.
pub fn sip_stream(data: &[u8]) {
    let limits = Limits {
        max_message_size: 4096,
        max_headers: 64,
    };
    // Beyond this, one push of everything is refused while small pushes
    // are not; the comparison would be meaningless.
    let data = &data[..data
        .len()
        .min(limits.max_message_size + super::framing::MAX_PUSH)];
    let whole = frame_all(data, &[data.len().max(1)], limits);
    let sizes: Vec<usize> = data
        .iter()
        .take(16)
        .map(|&b| usize::from(b % 17) + 1)
        .collect();
    let chunked = frame_all(data, &sizes, limits);
    assert_eq!(whole, chunked, "framing depends on how the stream is split");
    for item in whole.0 {
        if let StreamItem::Message(m) = item {
            let _ = Message::parse_with(&m, &limits, Framing::Stream);
        }
    }
}

type Framed = (Vec<StreamItem>, Option<super::ParseError>);

fn frame_all(data: &[u8], sizes: &[usize], limits: Limits) -> Framed {
    let mut f = StreamFramer::new(limits);
    let mut items = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        if let Err(e) = f.push(&rest[..n]) {
            return (items, Some(e));
        }
        rest = &rest[n..];
        loop {
            match f.next_item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => return (items, Some(e)),
            }
        }
    }
    (items, None)
}

/// A request head as read on a WS/WSS listener (the web phone's HTTP side):
/// the decision (serve a file, refuse, hand over to the WebSocket handshake,
/// or answer 400/431) never panics, does not depend on `web_phone` except
/// for which plain requests get a file, and does not change with bytes after
/// the head.
pub fn http_head(data: &[u8]) {
    super::transport::http::fuzz_examine(data);
}
