//! The plain-HTTP side of the WS and WSS listeners: the web phone page.
//!
//! Every connection to a WebSocket listener starts with an HTTP request. Its
//! head is read here, bounded by [`MAX_HEAD`] bytes and the handshake
//! deadline. A request with `Upgrade: websocket` goes on, together with the
//! bytes already read, to the WebSocket handshake ([`super::ws`]); any other
//! request is answered here and the connection closed (`Connection: close`):
//! with the web phone's files when [`super::TransportConfig::web_phone`] is
//! on, 404 when it is off.
//!
//! | path | file |
//! |---|---|
//! | `/`, `/index.html` | `controlplane/web/index.html` |
//! | `/phone.js` | `controlplane/web/phone.js` |
//! | `/jssip.js` | `controlplane/web/build/jssip.js` (built by npm; else a placeholder saying so) |
//!
//! Other paths are 404, methods other than GET and HEAD 405. A request head
//! that does not parse is answered 400 (431 when too large) and counted as
//! malformed input. The decision ([`examine`]) is a pure function of the
//! bytes; the socket loop around it is [`read_head`] and [`answer`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

/// Largest request head read (request line and headers), in bytes.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Most header lines in a request head.
const MAX_HEADERS: usize = 64;

const INDEX_HTML: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html"));
const PHONE_JS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/phone.js"));
/// The npm-built JsSIP bundle, or the placeholder (see `controlplane/build.rs`).
const JSSIP_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jssip.js"));

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// An HTTP answer to a request that is not a WebSocket upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Status code.
    pub(crate) status: u16,
    /// Content-Type of the body.
    pub(crate) content_type: &'static str,
    /// The body (also for HEAD, where only its length is sent).
    pub(crate) body: &'static [u8],
    /// HEAD: headers only.
    pub(crate) head_only: bool,
    /// Whether the request was malformed (counted as such).
    pub(crate) malformed: bool,
}

impl Answer {
    fn error(status: u16, malformed: bool) -> Answer {
        let body: &'static [u8] = match status {
            400 => b"Bad Request\r\n",
            404 => b"Not Found\r\n",
            405 => b"Method Not Allowed\r\n",
            _ => b"Request Header Fields Too Large\r\n",
        };
        Answer {
            status,
            content_type: TEXT,
            body,
            head_only: false,
            malformed,
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            _ => "Error",
        }
    }

    /// The response head (status line and headers, ending with the blank
    /// line).
    pub(crate) fn head(&self) -> String {
        let mut h = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n",
            self.status,
            self.reason(),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            h.push_str("Allow: GET, HEAD\r\n");
        }
        h.push_str("\r\n");
        h
    }
}

/// What to do with the bytes of a request head read so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// Incomplete: read more (the caller enforces [`MAX_HEAD`] with
    /// [`examine`]'s help: a partial head of that size is answered 431).
    Partial,
    /// A WebSocket upgrade request: hand the bytes to the WebSocket
    /// handshake.
    Upgrade,
    /// Answer this and close.
    Answer(Answer),
}

/// Decides what a request head asks for. `buf` is everything read so far
/// (possibly more than the head); `web_phone` whether the files are served.
pub(crate) fn examine(buf: &[u8], web_phone: bool) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            Head::Answer(Answer::error(431, true))
        }
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => Head::Answer(Answer::error(431, true)),
        Err(_) => Head::Answer(Answer::error(400, true)),
        Ok(httparse::Status::Complete(_)) => {
            let upgrade = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("upgrade")
                    && h.value
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
            });
            if upgrade {
                return Head::Upgrade;
            }
            let method = req.method.unwrap_or_default();
            let target = req.path.unwrap_or_default();
            Head::Answer(route(method, target, web_phone))
        }
    }
}

/// The answer to a well-formed plain HTTP request.
fn route(method: &str, target: &str, web_phone: bool) -> Answer {
    if !web_phone {
        return Answer::error(404, false);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Answer::error(405, false),
    };
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let (content_type, body) = match path {
        "/" | "/index.html" => (HTML, INDEX_HTML),
        "/phone.js" => (JS, PHONE_JS),
        "/jssip.js" => (JS, JSSIP_JS),
        _ => return Answer::error(404, false),
    };
    Answer {
        status: 200,
        content_type,
        body,
        head_only,
        malformed: false,
    }
}

/// Why reading a request head stopped without a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadFailed {
    /// The peer closed or the read failed.
    Closed,
    /// The handshake deadline passed.
    TimedOut,
}

/// Reads a request head (at most [`MAX_HEAD`] bytes, until `deadline`) and
/// examines it. Returns the decision and every byte read.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    io: &mut S,
    deadline: Instant,
    web_phone: bool,
) -> Result<(Head, Vec<u8>), ReadFailed> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        let n = match tokio::time::timeout_at(deadline, io.read(&mut chunk[..room])).await {
            Err(_) => return Err(ReadFailed::TimedOut),
            Ok(Err(_) | Ok(0)) => return Err(ReadFailed::Closed),
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        match examine(&buf, web_phone) {
            Head::Partial => {}
            head => return Ok((head, buf)),
        }
    }
}

/// Most bytes discarded after answering while waiting for the peer to close.
const DRAIN_MAX: usize = 64 * 1024;

/// Sends an answer within `limit` and closes the write side; then, for at
/// most `linger`, discards what the peer still sends until it closes (so
/// that unread input, e.g. the rest of an oversized head, does not make the
/// kernel reset the connection before the peer has read the answer).
pub(crate) async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    a: &Answer,
    limit: Duration,
    linger: Duration,
) -> std::io::Result<usize> {
    let head = a.head();
    let sent = tokio::time::timeout(limit, async {
        io.write_all(head.as_bytes()).await?;
        if !a.head_only {
            io.write_all(a.body).await?;
        }
        io.flush().await?;
        io.shutdown().await
    })
    .await;
    let n = match sent {
        Ok(Ok(())) => head.len() + if a.head_only { 0 } else { a.body.len() },
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
    };
    let _ = tokio::time::timeout(linger, async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_MAX {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(k) => drained += k,
            }
        }
    })
    .await;
    Ok(n)
}

/// A stream that first yields bytes already read from it: the WebSocket
/// handshake then sees the request head [`read_head`] consumed.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `prefix` is returned by reads before anything from `inner`.
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Fuzz body: [`examine`] never panics, and its decision does not depend on
/// how much of a complete head was read beyond the head itself, nor on
/// whether the files are served for anything but plain requests.
#[cfg(feature = "fuzz")]
pub(crate) fn fuzz_examine(data: &[u8]) {
    let buf = &data[..data.len().min(MAX_HEAD + 64)];
    let on = examine(buf, true);
    let off = examine(buf, false);
    match (on, off) {
        (Head::Partial, Head::Partial) | (Head::Upgrade, Head::Upgrade) => {}
        (Head::Answer(a), Head::Answer(b)) => {
            assert_eq!(a.malformed, b.malformed, "malformed depends on web_phone");
            if !b.malformed {
                assert_eq!(b.status, 404, "web_phone off answers 404");
            }
            let _ = a.head();
        }
        (a, b) => panic!("decision depends on web_phone: {a:?} vs {b:?}"),
    }
    // Every prefix of the input is either still partial or decided the same
    // way as soon as the head is complete.
    if let Head::Answer(Answer {
        malformed: false, ..
    })
    | Head::Upgrade = on
    {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            assert_eq!(
                examine(&buf[..n], true),
                on,
                "bytes after the head changed the decision"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(h: Head) -> u16 {
        match h {
            Head::Answer(a) => a.status,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn routes_the_page_files() {
        let get = |p: &str| {
            examine(
                format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                true,
            )
        };
        for (p, ct) in [
            ("/", HTML),
            ("/index.html", HTML),
            ("/phone.js", JS),
            ("/jssip.js", JS),
            ("/?a=b", HTML),
        ] {
            match get(p) {
                Head::Answer(a) => assert_eq!(
                    (a.status, a.content_type, a.head_only),
                    (200, ct, false),
                    "{p}"
                ),
                other => panic!("{p}: {other:?}"),
            }
        }
        assert_eq!(status(get("/nope")), 404);
        assert_eq!(status(get("/build/jssip.js")), 404);
        assert_eq!(status(get("/../web/index.html")), 404);
        let off = examine(b"GET / HTTP/1.1\r\n\r\n", false);
        assert_eq!(status(off), 404);
        let post = examine(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", true);
        assert_eq!(status(post), 405);
        match examine(b"HEAD /phone.js HTTP/1.1\r\n\r\n", true) {
            Head::Answer(a) => assert!(a.head_only && a.status == 200 && !a.body.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn upgrade_partial_and_malformed() {
        assert_eq!(
            examine(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n", true),
            Head::Partial
        );
        assert_eq!(
            examine(
                b"GET /ws HTTP/1.1\r\nUpgrade: h2c, WebSocket\r\n\r\n",
                false
            ),
            Head::Upgrade
        );
        match examine(b"\x16\x03\x01garbage\r\n\r\n", true) {
            Head::Answer(a) => assert!(a.malformed && a.status == 400),
            other => panic!("{other:?}"),
        }
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD, b'a');
        assert_eq!(status(examine(&big, true)), 431);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("H{i}: v\r\n"))
            .collect();
        assert_eq!(
            status(examine(
                format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(),
                true
            )),
            431
        );
    }

    #[test]
    fn head_names_length_and_close() {
        let Head::Answer(a) = examine(b"PUT / HTTP/1.1\r\n\r\n", true) else {
            panic!("expected an answer")
        };
        let h = a.head();
        assert!(h.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{h}");
        assert!(
            h.contains("Connection: close\r\n") && h.contains("Allow: GET, HEAD\r\n"),
            "{h}"
        );
        assert!(
            h.contains(&format!("Content-Length: {}\r\n", a.body.len())),
            "{h}"
        );
        assert!(h.ends_with("\r\n\r\n"));
    }
}
