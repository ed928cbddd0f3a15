//! ng over TCP: the same `<cookie> <bencoded dictionary>` messages back to
//! back on a byte stream, with no length prefix or separator, as rtpengine's
//! TCP listener takes them: a message ends where its dictionary ends.
//! Whitespace between messages is skipped.
//!
//! Sans-IO: bytes go in with [`StreamFramer::push`], whole messages come out
//! of [`StreamFramer::next_message`]. A stream whose next message cannot be
//! delimited (no cookie, not a dictionary, broken bencode) or would exceed
//! the size limit cannot be resynchronized: the caller answers what it can
//! ([`StreamFramer::take_rest`]) and closes the connection.

use super::bencode::{decode_prefix, DecodeError, Limits};
use super::message::MAX_COOKIE_LEN;

/// Why a stream cannot go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The next message is longer than the limit.
    TooLarge,
    /// The next message has no cookie or no decodable dictionary.
    Malformed,
}

/// Cuts a byte stream into ng messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_message: usize,
    limits: Limits,
    /// Buffer length at the last attempt that found the message incomplete
    /// (0: none since the last message).
    checked: usize,
}

impl StreamFramer {
    /// A framer for messages of at most `max_message` bytes, dictionaries
    /// decoded within `limits` (its `max_size` is lowered to fit).
    pub fn new(max_message: usize, limits: Limits) -> Self {
        StreamFramer {
            buf: Vec::new(),
            max_message,
            limits,
            checked: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held (an incomplete message).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes everything held (at most the size limit, plus one byte so an
    /// oversized message still looks oversized), e.g. to answer a message
    /// that cannot be framed before closing.
    pub fn take_rest(&mut self) -> Vec<u8> {
        let keep = self.buf.len().min(self.max_message.saturating_add(1));
        let mut rest = std::mem::take(&mut self.buf);
        rest.truncate(keep);
        rest
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        let skip = self
            .buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(self.buf.len());
        self.buf.drain(..skip);
        self.checked = self.checked.saturating_sub(skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some(sp) = self
            .buf
            .iter()
            .take(MAX_COOKIE_LEN + 1)
            .position(|&b| b == b' ')
        else {
            return if self.buf.len() > MAX_COOKIE_LEN {
                Err(StreamError::Malformed)
            } else {
                Ok(None)
            };
        };
        let payload = &self.buf[sp + 1..];
        match payload.first() {
            None => return Ok(None),
            Some(b'd') => {}
            Some(_) => return Err(StreamError::Malformed),
        }
        // A dictionary ends with 'e': after an incomplete attempt, decoding
        // again is only worth it once an 'e' has arrived, so a message
        // trickling in does not cost a decode per read.
        if self.checked > 0 && !self.buf[self.checked.min(self.buf.len())..].contains(&b'e') {
            return self.incomplete();
        }
        let limits = Limits {
            max_size: self
                .limits
                .max_size
                .min(self.max_message.saturating_sub(sp + 1)),
            ..self.limits
        };
        match decode_prefix(payload, &limits) {
            Ok((_, n)) => {
                let end = sp + 1 + n;
                let msg = self.buf.drain(..end).collect();
                self.checked = 0;
                Ok(Some(msg))
            }
            Err(DecodeError::UnexpectedEnd) => {
                self.checked = self.buf.len();
                self.incomplete()
            }
            Err(DecodeError::TooLarge) => Err(StreamError::TooLarge),
            Err(_) => Err(StreamError::Malformed),
        }
    }

    fn incomplete(&self) -> Result<Option<Vec<u8>>, StreamError> {
        if self.buf.len() > self.max_message {
            Err(StreamError::TooLarge)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> StreamFramer {
        StreamFramer::new(1000, Limits::default())
    }

    #[test]
    fn back_to_back_messages_and_split_reads() {
        let wire = b"c1 d7:command4:pinge\r\nc2 d7:command4:pingec3 d1:al1:xee";
        // Every split point gives the same messages.
        for cut in 0..=wire.len() {
            let mut f = framer();
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                f.push(part);
                while let Some(m) = f.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(
                got,
                vec![
                    b"c1 d7:command4:pinge".to_vec(),
                    b"c2 d7:command4:pinge".to_vec(),
                    b"c3 d1:al1:xee".to_vec()
                ],
                "cut at {cut}"
            );
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn byte_by_byte() {
        let wire = b"cookie d3:sdp9:v=0\r\ne=abe";
        let mut f = framer();
        let mut got = Vec::new();
        for b in wire {
            f.push(&[*b]);
            if let Some(m) = f.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![wire.to_vec()]);
    }

    #[test]
    fn unframeable_input_is_an_error() {
        let mut f = framer();
        f.push(b"c1 l1:ae");
        assert_eq!(f.next_message(), Err(StreamError::Malformed));
        let mut f = framer();
        f.push(b"c1 d1:xi1x2ee");
        assert_eq!(f.next_message(), Err(StreamError::Malformed));
        let mut f = framer();
        f.push(&[b'c'; MAX_COOKIE_LEN + 1]);
        assert_eq!(f.next_message(), Err(StreamError::Malformed));
        let mut f = framer();
        f.push(b"c1 d3:sdp2000:");
        f.push(&[b'e'; 1200]);
        assert_eq!(f.next_message(), Err(StreamError::TooLarge));
        assert_eq!(f.take_rest().len(), 1001);
        assert_eq!(f.buffered(), 0);
        // Incomplete and within bounds: wait.
        let mut f = framer();
        f.push(b"c1 d3:sdp5:v=0");
        assert_eq!(f.next_message(), Ok(None));
    }
}
