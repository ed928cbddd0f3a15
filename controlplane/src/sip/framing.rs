//! Sans-IO framing of SIP over a byte stream (TCP, TLS; RFC 3261 §18.3):
//! messages are delimited by the empty line and Content-Length, may arrive
//! split across reads or several in one read, and RFC 5626 §3.5.1 keepalive
//! pings (CRLFCRLF between messages) are recognised.

use super::error::ParseError;
use super::message::{find_head_end, raw_content_length, split_head, Limits};

/// How many bytes beyond the message size limit one push may add (the
/// caller reads at most this much at a time).
pub const MAX_PUSH: usize = 64 * 1024;

/// What [`StreamFramer::next_item`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// The exact bytes of one message (parse with
    /// [`Framing::Stream`](super::Framing::Stream)).
    Message(Vec<u8>),
    /// A CRLFCRLF keepalive ping: answer with one CRLF (the pong).
    Ping,
}

/// Reassembles SIP messages from stream reads, with bounded memory.
///
/// Push each read with [`StreamFramer::push`], then call
/// [`StreamFramer::next_item`] until it returns `Ok(None)`. An error means
/// the stream cannot be delimited any more (bad, duplicate or missing
/// Content-Length, a header section or message over the size limit, a header
/// section that is not UTF-8): answer if possible (see
/// [`error_response`](super::error_response) on [`StreamFramer::buffer`]) and
/// close the connection. Once failed, the framer keeps returning the error.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: Limits,
    /// How far the search for the end of the header section got.
    scanned: usize,
    /// Total length of the message whose header section has been found.
    pending: Option<usize>,
    failed: Option<ParseError>,
}

impl StreamFramer {
    /// A framer enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: Vec::new(),
            limits,
            scanned: 0,
            pending: None,
            failed: None,
        }
    }

    /// Appends received bytes. Fails (and the framer stays failed) if more
    /// than `max_message_size + MAX_PUSH` bytes would be buffered, i.e. if
    /// the caller did not drain complete messages.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.buf.len() + data.len() > self.limits.max_message_size + MAX_PUSH {
            self.failed = Some(ParseError::TooLarge);
            return Err(ParseError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The bytes buffered and not yet returned (after an error: starting with
    /// the offending message).
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Whether a message has started but not completed (for a
    /// message-assembly timeout).
    pub fn is_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next complete item, `Ok(None)` if more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.advance() {
            Ok(item) => Ok(item),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    fn advance(&mut self) -> Result<Option<StreamItem>, ParseError> {
        loop {
            if let Some(total) = self.pending {
                if self.buf.len() < total {
                    return Ok(None);
                }
                let rest = self.buf.split_off(total);
                let msg = std::mem::replace(&mut self.buf, rest);
                self.pending = None;
                self.scanned = 0;
                return Ok(Some(StreamItem::Message(msg)));
            }
            if self.buf.starts_with(b"\r\n") {
                if self.buf.starts_with(b"\r\n\r\n") {
                    self.buf.drain(..4);
                    self.scanned = 0;
                    return Ok(Some(StreamItem::Ping));
                }
                if self.buf.len() < 4 && b"\r\n\r\n".starts_with(&self.buf) {
                    return Ok(None); // may become a ping
                }
                self.buf.drain(..2);
                self.scanned = 0;
                continue;
            }
            let from = self.scanned.saturating_sub(3);
            let Some((end, body)) =
                find_head_end(&self.buf[from..]).map(|(e, b)| (e + from, b + from))
            else {
                self.scanned = self.buf.len();
                if self.buf.len() > self.limits.max_message_size {
                    return Err(ParseError::TooLarge);
                }
                return Ok(None);
            };
            if end > self.limits.max_message_size {
                return Err(ParseError::TooLarge);
            }
            let head = std::str::from_utf8(&self.buf[..end]).map_err(|_| ParseError::NotUtf8)?;
            let raw = split_head(head, self.limits.max_headers, true)?;
            let cl = raw_content_length(&raw.headers)?.ok_or(ParseError::MissingContentLength)?;
            let total = body.checked_add(cl).ok_or(ParseError::TooLarge)?;
            if total > self.limits.max_message_size {
                return Err(ParseError::TooLarge);
            }
            self.pending = Some(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";

    fn drain(f: &mut StreamFramer) -> Vec<StreamItem> {
        let mut out = Vec::new();
        while let Some(i) = f.next_item().unwrap() {
            out.push(i);
        }
        out
    }

    #[test]
    fn byte_by_byte_and_batched() {
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        let stream = [b"\r\n\r\n".as_slice(), MSG, b"\r\n", MSG].concat();
        for b in &stream {
            f.push(std::slice::from_ref(b)).unwrap();
            got.extend(drain(&mut f));
        }
        assert_eq!(
            got,
            vec![
                StreamItem::Ping,
                StreamItem::Message(MSG.to_vec()),
                StreamItem::Message(MSG.to_vec())
            ]
        );
        assert!(!f.is_partial());

        let mut f = StreamFramer::new(Limits::default());
        f.push(&[MSG, MSG, b"\r\n\r\n", &MSG[..10]].concat())
            .unwrap();
        assert_eq!(drain(&mut f).len(), 3);
        assert!(f.is_partial());
    }

    #[test]
    fn framing_errors() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n")
            .unwrap();
        assert_eq!(f.next_item(), Err(ParseError::BadContentLength));
        assert_eq!(f.next_item(), Err(ParseError::BadContentLength));

        let mut f = StreamFramer::new(Limits::default());
        f.push(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(f.next_item(), Err(ParseError::MissingContentLength));

        let limits = Limits {
            max_message_size: 100,
            max_headers: 10,
        };
        let mut f = StreamFramer::new(limits);
        f.push(&[b'x'; 101]).unwrap();
        assert_eq!(f.next_item(), Err(ParseError::TooLarge));

        let mut f = StreamFramer::new(limits);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n")
            .unwrap();
        assert_eq!(f.next_item(), Err(ParseError::TooLarge));

        let mut f = StreamFramer::new(limits);
        assert_eq!(
            f.push(&vec![b'x'; 100 + MAX_PUSH + 1]),
            Err(ParseError::TooLarge)
        );
    }
}
