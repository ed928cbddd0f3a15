//! The ng control protocol (rtpengine's, also spoken by Strait): one UDP
//! datagram per message, `<cookie> <bencoded dictionary>`; the reply
//! carries the same cookie. A target caches replies by cookie, so a
//! retransmitted request is answered without being executed twice.
//!
//! [`encode_request`] and [`parse_reply`] are the sans-IO codec;
//! [`NgClient`] is the thin blocking UDP client around them (timeout and a
//! bounded number of retransmissions).

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::bencode::{self, DecodeError, Value};

/// Longest cookie accepted in a reply.
pub const MAX_COOKIE: usize = 128;

/// An ng request as one datagram: `cookie`, a space, the bencoded `body`.
pub fn encode_request(cookie: &str, body: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(cookie.len() + 256);
    out.extend_from_slice(cookie.as_bytes());
    out.push(b' ');
    body.encode_into(&mut out);
    out
}

/// Why an ng reply datagram was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// No space separating cookie and body, or an over-long cookie.
    NoCookie,
    /// The body is not valid bencode.
    Bencode(DecodeError),
    /// The body is not a dictionary.
    NotADictionary,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::NoCookie => write!(f, "ng reply without cookie"),
            ReplyError::Bencode(e) => write!(f, "ng reply: {e}"),
            ReplyError::NotADictionary => write!(f, "ng reply body is not a dictionary"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Splits a reply datagram into its cookie and decoded dictionary.
pub fn parse_reply(data: &[u8]) -> Result<(&[u8], Value), ReplyError> {
    let space = data
        .iter()
        .take(MAX_COOKIE + 1)
        .position(|&b| b == b' ')
        .ok_or(ReplyError::NoCookie)?;
    let (cookie, body) = (&data[..space], &data[space + 1..]);
    let value = bencode::decode(body).map_err(ReplyError::Bencode)?;
    match value {
        Value::Dict(_) => Ok((cookie, value)),
        _ => Err(ReplyError::NotADictionary),
    }
}

/// An error of one ng transaction.
#[derive(Debug)]
pub enum NgError {
    /// Socket error.
    Io(io::Error),
    /// No matching reply after all retransmissions.
    Timeout {
        /// The command that went unanswered.
        command: String,
        /// How many times it was sent.
        attempts: u32,
    },
    /// The target answered `result: error` (or anything but `ok`/`pong`).
    Failed {
        /// The command.
        command: String,
        /// `result` and `error-reason` of the reply.
        reason: String,
    },
}

impl fmt::Display for NgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NgError::Io(e) => write!(f, "ng socket: {e}"),
            NgError::Timeout { command, attempts } => {
                write!(f, "ng {command}: no reply after {attempts} attempts")
            }
            NgError::Failed { command, reason } => write!(f, "ng {command} failed: {reason}"),
        }
    }
}

impl std::error::Error for NgError {}

impl From<io::Error> for NgError {
    fn from(e: io::Error) -> Self {
        NgError::Io(e)
    }
}

/// Blocking ng client over UDP.
#[derive(Debug)]
pub struct NgClient {
    socket: UdpSocket,
    target: SocketAddr,
    timeout: Duration,
    attempts: u32,
    prefix: String,
    counter: u64,
    /// Replies that could not be parsed or carried a stale cookie.
    pub ignored_replies: u64,
}

impl NgClient {
    /// A client for the target's ng address, with the per-attempt reply
    /// `timeout` and the number of `attempts` (at least 1).
    pub fn new(target: SocketAddr, timeout: Duration, attempts: u32) -> io::Result<Self> {
        let bind: SocketAddr = if target.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let socket = UdpSocket::bind(bind)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Ok(Self {
            socket,
            target,
            timeout,
            attempts: attempts.max(1),
            prefix: format!("slt{}x{nanos}", std::process::id()),
            counter: 0,
            ignored_replies: 0,
        })
    }

    /// The target's ng address.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Sends `body` and waits for the reply with the same cookie; a reply
    /// whose `result` is not `ok` or `pong` is an [`NgError::Failed`].
    pub fn request(&mut self, body: &Value) -> Result<Value, NgError> {
        let command = body.text("command").unwrap_or_default();
        self.counter += 1;
        let cookie = format!("{}_{}", self.prefix, self.counter);
        let msg = encode_request(&cookie, body);
        let mut buf = vec![0u8; 65536];
        for _ in 0..self.attempts {
            self.socket.send_to(&msg, self.target)?;
            let deadline = Instant::now() + self.timeout;
            // Bounded: every iteration either returns or consumes one
            // datagram, and the deadline ends the wait.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.socket.set_read_timeout(Some(left))?;
                let n = match self.socket.recv_from(&mut buf) {
                    Ok((n, _)) => n,
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::TimedOut =>
                    {
                        break
                    }
                    Err(e) => return Err(e.into()),
                };
                match parse_reply(&buf[..n]) {
                    Ok((c, v)) if c == cookie.as_bytes() => {
                        let result = v.text("result").unwrap_or_default();
                        if result == "ok" || result == "pong" {
                            return Ok(v);
                        }
                        let reason = v.text("error-reason").unwrap_or_default();
                        return Err(NgError::Failed {
                            command,
                            reason: format!("result={result} {reason}"),
                        });
                    }
                    _ => self.ignored_replies += 1,
                }
            }
        }
        Err(NgError::Timeout {
            command,
            attempts: self.attempts,
        })
    }

    /// `ping`; Ok when the target answers `pong`.
    pub fn ping(&mut self) -> Result<(), NgError> {
        self.request(&Value::dict([("command", Value::str("ping"))]))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_cookie_space_bencode() {
        let body = Value::dict([("command", Value::str("ping"))]);
        assert_eq!(
            encode_request("c1", &body),
            b"c1 d7:command4:pinge".to_vec()
        );
    }

    #[test]
    fn parses_replies_and_rejects_junk() {
        let (c, v) = parse_reply(b"abc_1 d6:result4:ponge").unwrap();
        assert_eq!(c, b"abc_1");
        assert_eq!(v.text("result").as_deref(), Some("pong"));
        assert_eq!(parse_reply(b"nocookie"), Err(ReplyError::NoCookie));
        assert_eq!(parse_reply(b"c i1e"), Err(ReplyError::NotADictionary));
        assert!(matches!(
            parse_reply(b"c d6:result"),
            Err(ReplyError::Bencode(_))
        ));
        let long = [vec![b'x'; MAX_COOKIE + 1], b" de".to_vec()].concat();
        assert_eq!(parse_reply(&long), Err(ReplyError::NoCookie));
    }

    #[test]
    fn client_retries_and_matches_cookie() {
        // A fake target on loopback: drops the first request, then answers
        // once with a stale cookie and once with the right one.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let (_, _) = server.recv_from(&mut buf).unwrap(); // dropped
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let (cookie, body) =
                buf[..n].split_at(buf[..n].iter().position(|&b| b == b' ').unwrap());
            assert_eq!(&body[1..], b"d7:command4:pinge");
            server.send_to(b"stale d6:result4:ponge", from).unwrap();
            let mut reply = cookie.to_vec();
            reply.extend_from_slice(b" d6:result4:ponge");
            server.send_to(&reply, from).unwrap();
        });
        let mut c = NgClient::new(addr, Duration::from_millis(200), 5).unwrap();
        c.ping().unwrap();
        assert_eq!(c.ignored_replies, 1);
        handle.join().unwrap();
    }

    #[test]
    fn client_reports_failure_reason() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let sp = buf[..n].iter().position(|&b| b == b' ').unwrap();
            let mut reply = buf[..sp].to_vec();
            reply.extend_from_slice(b" d12:error-reason7:no call6:result5:errore");
            server.send_to(&reply, from).unwrap();
        });
        let mut c = NgClient::new(addr, Duration::from_millis(500), 2).unwrap();
        let err = c
            .request(&Value::dict([("command", Value::str("delete"))]))
            .unwrap_err();
        assert!(err.to_string().contains("no call"), "{err}");
        handle.join().unwrap();
    }
}
