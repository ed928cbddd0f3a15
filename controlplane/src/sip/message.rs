//! SIP messages: parsing (RFC 3261 §7, §25), validation of the headers every
//! element relies on, serialization with a computed Content-Length, and
//! building responses (§8.2.6).

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use super::error::ParseError;
use super::header::{Header, HeaderName, Headers};
use super::text::{is_token, parse_digits, trim_ws};
use super::typed::{CSeq, Method, NameAddr, Via};
use super::uri::Uri;

/// Size limits applied while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, header section and body together
    /// (default 64 KiB).
    pub max_message_size: usize,
    /// Most header lines (after unfolding) in one message (default 256).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_headers: 256,
        }
    }
}

/// How the message was delimited, which decides what Content-Length means
/// (RFC 3261 §18.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One datagram or one WebSocket message: Content-Length is optional
    /// (absent: the body is the rest), bytes after the body are discarded, a
    /// body shorter than Content-Length is an error.
    Datagram,
    /// Cut from a stream by [`StreamFramer`](super::StreamFramer):
    /// Content-Length is mandatory.
    Stream,
}

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI (may be a non-SIP URI: check [`Uri::is_sip`] and
    /// answer 416 where needed).
    pub uri: Uri<'static>,
    /// The header lines (Content-Length excluded).
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code (100..=699).
    pub status: u16,
    /// The reason phrase (UTF-8, may be empty).
    pub reason: String,
    /// The header lines (Content-Length excluded).
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A SIP request or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// The usual reason phrase of a status code ("" if unknown).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        430 => "Flow Failed",
        439 => "First Hop Lacks Outbound Support",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// raw parsing

/// Start line and unfolded header lines of a header section.
pub(crate) struct RawHead<'a> {
    pub(crate) start: &'a str,
    pub(crate) headers: Vec<(&'a str, Cow<'a, str>)>,
}

/// Splits a header section (start line to the last header line, without the
/// terminating empty line) into the start line and unfolded header lines.
/// `lenient` skips bad lines instead of failing (used to answer a malformed
/// request, and to find Content-Length while framing a stream).
pub(crate) fn split_head(
    head: &str,
    max_headers: usize,
    lenient: bool,
) -> Result<RawHead<'_>, ParseError> {
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or("");
    let mut headers: Vec<(&str, Cow<'_, str>)> = Vec::new();
    let mut skipping = false;
    for line in lines {
        let bad = if line.starts_with([' ', '\t']) {
            // A continuation line.
            match headers.last_mut() {
                Some((_, v)) if !skipping && !line.contains(['\r', '\n']) => {
                    let more = trim_ws(line);
                    if !more.is_empty() {
                        let s = v.to_mut();
                        s.truncate(trim_ws(s).len());
                        if !s.is_empty() {
                            s.push(' ');
                        }
                        s.push_str(more);
                    }
                    false
                }
                _ => true,
            }
        } else {
            skipping = false;
            match line.split_once(':') {
                Some((name, value)) => {
                    let name = name.trim_end_matches([' ', '\t']);
                    if is_token(name) && !value.contains(['\r', '\n']) {
                        if headers.len() >= max_headers {
                            return Err(ParseError::TooManyHeaders);
                        }
                        headers.push((name, Cow::Borrowed(trim_ws(value))));
                        false
                    } else {
                        true
                    }
                }
                None => true,
            }
        };
        if bad {
            if !lenient {
                return Err(ParseError::BadHeaderLine);
            }
            skipping = true;
        }
    }
    Ok(RawHead { start, headers })
}

/// Where the header section ends: (offset of the terminating CRLFCRLF, offset
/// of the body). `data` must not start with CRLF.
pub(crate) fn find_head_end(data: &[u8]) -> Option<(usize, usize)> {
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
}

fn skip_leading_crlf(mut data: &[u8]) -> &[u8] {
    while let Some(rest) = data.strip_prefix(b"\r\n") {
        data = rest;
    }
    data
}

/// Content-Length from raw header lines: `Ok(None)` if absent.
pub(crate) fn raw_content_length(
    headers: &[(&str, Cow<'_, str>)],
) -> Result<Option<usize>, ParseError> {
    let mut found = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
            if found.is_some() {
                return Err(ParseError::DuplicateHeader("Content-Length"));
            }
            let n = parse_digits(value)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(ParseError::BadContentLength)?;
            found = Some(n);
        }
    }
    Ok(found)
}

fn parse_version(v: &str) -> Result<(), ParseError> {
    let rest = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &v[4..])
        .ok_or(ParseError::BadVersion)?;
    let (major, minor) = rest.split_once('.').ok_or(ParseError::BadVersion)?;
    let (major, minor) = (
        parse_digits(major).ok_or(ParseError::BadVersion)?,
        parse_digits(minor).ok_or(ParseError::BadVersion)?,
    );
    if (major, minor) == (2, 0) {
        Ok(())
    } else {
        Err(ParseError::UnsupportedVersion)
    }
}

enum StartLine<'a> {
    Request(&'a str, &'a str),
    Response(u16, &'a str),
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        let (version, rest) = line.split_once(' ').ok_or(ParseError::BadStartLine)?;
        parse_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        // Reason-Phrase: text, no control characters but HTAB.
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::BadStartLine);
        }
        if code.len() != 3 {
            return Err(ParseError::BadStatusCode);
        }
        let status = parse_digits(code)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (100..=699).contains(c))
            .ok_or(ParseError::BadStatusCode)?;
        return Ok(StartLine::Response(status, reason));
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine);
    };
    if !is_token(method) {
        return Err(ParseError::BadMethod);
    }
    parse_version(version)?;
    if uri.is_empty() {
        return Err(ParseError::BadRequestUri);
    }
    Ok(StartLine::Request(method, uri))
}

impl Message {
    /// Parses one datagram (or WebSocket message) with default limits.
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        Message::parse_with(data, &Limits::default(), Framing::Datagram)
    }

    /// Parses one message. The message is validated: the start line; every
    /// header line; Via (at least one, all well-formed), From, To, Call-ID and
    /// CSeq (exactly one each, well-formed); Max-Forwards (at most one, 0..=255);
    /// the CSeq method of a request equals its method; Content-Length.
    /// Leading CRLFs are skipped.
    pub fn parse_with(
        data: &[u8],
        limits: &Limits,
        framing: Framing,
    ) -> Result<Message, ParseError> {
        if data.len() > limits.max_message_size {
            return Err(ParseError::TooLarge);
        }
        let data = skip_leading_crlf(data);
        if data.is_empty() {
            return Err(ParseError::Empty);
        }
        let (head_end, body_start) = find_head_end(data).ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(&data[..head_end]).map_err(|_| ParseError::NotUtf8)?;
        let raw = split_head(head, limits.max_headers, false)?;
        let start = parse_start_line(raw.start)?;
        let rest = &data[body_start..];
        let body = match raw_content_length(&raw.headers)? {
            Some(n) if n > rest.len() => return Err(ParseError::BodyTruncated),
            Some(n) => &rest[..n],
            None if framing == Framing::Stream => return Err(ParseError::MissingContentLength),
            None => rest,
        };
        let mut list = Vec::with_capacity(raw.headers.len());
        for (name, value) in raw.headers {
            let name = HeaderName::new(name)?;
            if !matches!(name, HeaderName::ContentLength) {
                list.push(Header::new_unchecked(name, value.into_owned()));
            }
        }
        let headers = Headers::from_vec(list);
        let msg = match start {
            StartLine::Request(method, uri) => {
                let method = Method::parse(method)?;
                let uri = Uri::parse(uri).map_err(|_| ParseError::BadRequestUri)?;
                // RFC 3261 §19.1.1, Table 1: no headers in a Request-URI.
                if uri.as_sip().is_some_and(|u| u.headers().is_some()) {
                    return Err(ParseError::BadRequestUri);
                }
                let uri = uri.into_owned();
                Message::Request(Request {
                    method,
                    uri,
                    headers,
                    body: body.to_vec(),
                })
            }
            StartLine::Response(status, reason) => Message::Response(Response {
                status,
                reason: reason.to_owned(),
                headers,
                body: body.to_vec(),
            }),
        };
        msg.validate()?;
        Ok(msg)
    }

    /// The checks of [`Message::parse_with`] on the headers (useful after
    /// editing).
    pub fn validate(&self) -> Result<(), ParseError> {
        let h = self.headers();
        let mut vias = 0;
        for v in h.values(HeaderName::Via) {
            Via::parse(v)?;
            vias += 1;
        }
        if vias == 0 {
            return Err(ParseError::MissingHeader("Via"));
        }
        h.from_addr()?;
        h.to_addr()?;
        h.call_id()?;
        let cseq = h.cseq()?;
        if let Message::Request(r) = self {
            h.max_forwards()?;
            if cseq.method != r.method {
                return Err(ParseError::CSeqMethodMismatch);
            }
        }
        Ok(())
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The headers, mutably.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Request(_) => None,
            Message::Response(r) => Some(r),
        }
    }

    /// Serializes (Content-Length computed from the body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the serialized message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Request(r) => r.write_to(out),
            Message::Response(r) => r.write_to(out),
        }
    }
}

fn write_headers_and_body(headers: &Headers, body: &[u8], out: &mut Vec<u8>) {
    for h in headers {
        out.extend_from_slice(h.name().as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri<'static>) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Appends the serialized request to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.uri.to_string().as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }

    /// Serializes the request.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Sets the body and its Content-Type (`None` removes Content-Type).
    pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
        set_body(&mut self.headers, &mut self.body, content_type, body);
    }
}

fn set_body(headers: &mut Headers, slot: &mut Vec<u8>, content_type: Option<&str>, body: Vec<u8>) {
    match content_type {
        Some(ct) => headers.set(HeaderName::ContentType, ct),
        None => {
            headers.remove(HeaderName::ContentType);
        }
    }
    *slot = body;
}

impl Response {
    /// A response with the usual reason phrase, no headers and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: reason_phrase(status).to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` as RFC 3261 §8.2.6.2 says: Via lines (all, in
    /// order), From, To, Call-ID and CSeq copied; Timestamp too for a 100.
    /// Add a To tag with [`Response::set_to_tag`] (not for 100).
    pub fn from_request(req: &Request, status: u16) -> Response {
        let mut resp = Response::new(status);
        copy_dialog_headers(&req.headers, &mut resp.headers, status == 100);
        resp
    }

    /// Sets the tag of the To header unless it already has one.
    pub fn set_to_tag(&mut self, tag: &str) -> Result<(), ParseError> {
        let mut to = self.headers.to_addr()?;
        if to.tag().is_some() {
            return Ok(());
        }
        to.set_tag(tag)?;
        let v = to.to_string();
        self.headers.set(HeaderName::To, v);
        Ok(())
    }

    /// Replaces the reason phrase (CR/LF become spaces).
    pub fn with_reason(mut self, reason: &str) -> Response {
        self.reason = reason.replace(['\r', '\n'], " ");
        self
    }

    /// Appends the serialized response to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"SIP/2.0 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.reason.replace(['\r', '\n'], " ").as_bytes());
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }

    /// Serializes the response.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Sets the body and its Content-Type (`None` removes Content-Type).
    pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
        set_body(&mut self.headers, &mut self.body, content_type, body);
    }
}

fn copy_dialog_headers(from: &Headers, to: &mut Headers, timestamp: bool) {
    for h in from {
        let copy = match h.name() {
            HeaderName::Via
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq => true,
            HeaderName::Timestamp => timestamp,
            _ => false,
        };
        if copy {
            to.push(h.name().clone(), h.value());
        }
    }
}

/// A deterministic To tag for a stateless answer (RFC 3261 §8.2.7: the same
/// request must get the same tag).
fn stateless_tag(headers: &Headers) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    headers.get(HeaderName::CallId).hash(&mut h);
    headers.get(HeaderName::CSeq).hash(&mut h);
    headers.get(HeaderName::From).hash(&mut h);
    format!("st{:016x}", h.finish())
}

/// Builds the stateless answer to a request that failed to parse with
/// `error`: status [`ParseError::status_code`], reason phrase naming the
/// problem, Via/From/To/Call-ID/CSeq copied as received (a To tag is added if
/// To is well-formed). `None` if `data` is not a request, is an ACK, or lacks
/// one of those five headers (nothing can route an answer) — such input is
/// dropped.
pub fn error_response(data: &[u8], error: ParseError, limits: &Limits) -> Option<Response> {
    let data = skip_leading_crlf(data.get(..data.len().min(limits.max_message_size))?);
    let head_end = find_head_end(data).map_or(data.len(), |(e, _)| e);
    let head = match std::str::from_utf8(&data[..head_end]) {
        Ok(h) => h,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).ok()?,
    };
    let raw = split_head(head, limits.max_headers, true).ok()?;
    // Only a request line: method SP something.
    let (method, _) = raw.start.split_once(' ')?;
    if !is_token(method)
        || method == "ACK"
        || method.len() >= 4 && method[..4].eq_ignore_ascii_case("SIP/")
    {
        return None;
    }
    let mut headers = Headers::new();
    for (name, value) in &raw.headers {
        let Ok(name) = HeaderName::new(name) else {
            continue;
        };
        let wanted = matches!(
            name,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        );
        if wanted {
            headers.push(name, value.as_ref());
        }
    }
    for needed in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        if !headers.contains(&needed) {
            return None;
        }
    }
    let status = error.status_code();
    let mut resp = Response::new(status);
    if status == 400 {
        resp.reason = format!("Bad Request ({error})");
    }
    resp.headers = headers;
    if resp.headers.count(HeaderName::To) == 1 {
        let tag = stateless_tag(&resp.headers);
        let _ = resp.set_to_tag(&tag);
    }
    Some(resp)
}

/// Whether a datagram/WebSocket payload is only CRLFs (a keepalive).
pub fn is_keepalive(data: &[u8]) -> bool {
    !data.is_empty() && data.iter().all(|&b| b == b'\r' || b == b'\n')
}

impl Request {
    /// The From address.
    pub fn from_addr(&self) -> Result<NameAddr<'_>, ParseError> {
        self.headers.from_addr()
    }

    /// The To address.
    pub fn to_addr(&self) -> Result<NameAddr<'_>, ParseError> {
        self.headers.to_addr()
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        self.headers.cseq()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.headers.call_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:user@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n\
To: <sip:user@example.com>\r\n\
From: <sip:caller@example.net>;tag=1\r\n\
Call-ID: abc@def\r\n\
CSeq: 8 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn parse_and_serialize() {
        let m = Message::parse(OPTIONS).unwrap();
        let Message::Request(r) = &m else {
            panic!("request expected")
        };
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.headers.call_id().unwrap(), "abc@def");
        let bytes = m.to_bytes();
        assert_eq!(bytes, OPTIONS);
        assert_eq!(Message::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn content_length_rules() {
        let with_body = |cl: &str, body: &str| {
            let s = String::from_utf8_lossy(OPTIONS).replace("Content-Length: 0", cl);
            format!("{s}{body}").into_bytes()
        };
        // Extra bytes after the body are discarded on a datagram.
        let m = Message::parse(&with_body("Content-Length: 3", "abcdef")).unwrap();
        assert_eq!(m.body(), b"abc");
        // Short body.
        assert_eq!(
            Message::parse(&with_body("Content-Length: 9999", "abc")),
            Err(ParseError::BodyTruncated)
        );
        assert_eq!(
            Message::parse(&with_body("Content-Length: -999", "abc")),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(
            Message::parse(&with_body("Content-Length: 3\r\nl: 3", "abc")),
            Err(ParseError::DuplicateHeader("Content-Length"))
        );
        // Absent: the rest of the datagram; mandatory on a stream.
        let no_cl = with_body("X-A: b", "hello");
        assert_eq!(Message::parse(&no_cl).unwrap().body(), b"hello");
        assert_eq!(
            Message::parse_with(&no_cl, &Limits::default(), Framing::Stream),
            Err(ParseError::MissingContentLength)
        );
        assert_eq!(
            Message::parse_with(
                OPTIONS,
                &Limits {
                    max_message_size: 100,
                    max_headers: 10
                },
                Framing::Datagram
            ),
            Err(ParseError::TooLarge)
        );
        assert_eq!(
            Message::parse_with(
                OPTIONS,
                &Limits {
                    max_message_size: 1000,
                    max_headers: 3
                },
                Framing::Datagram
            ),
            Err(ParseError::TooManyHeaders)
        );
    }

    #[test]
    fn start_line_rules() {
        let resp = |first: &str| {
            let s = String::from_utf8_lossy(OPTIONS)
                .replace("OPTIONS sip:user@example.com SIP/2.0", first);
            Message::parse(s.as_bytes())
        };
        assert!(resp("SIP/2.0 100 ").is_ok());
        assert!(resp("SIP/2.0 180").is_ok());
        assert_eq!(
            resp("SIP/2.0 4294967301 x").unwrap_err(),
            ParseError::BadStatusCode
        );
        assert_eq!(
            resp("SIP/2.0 099 x").unwrap_err(),
            ParseError::BadStatusCode
        );
        // Found by fuzzing: a bare CR in the reason phrase cannot round-trip.
        assert_eq!(
            resp("SIP/2.0 200 OK\r\u{e}x").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            resp("SIP/3.0 200 OK").unwrap_err(),
            ParseError::UnsupportedVersion
        );
        assert_eq!(
            resp("OPTIONS  sip:a@b SIP/2.0").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            resp("OPTIONS sip:a@b SIP/2.0 ").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            resp("OPT(ONS sip:a@b SIP/2.0").unwrap_err(),
            ParseError::BadMethod
        );
        assert_eq!(
            resp("OPTIONS sip:a@b SIP/2").unwrap_err(),
            ParseError::BadVersion
        );
        assert_eq!(
            resp("OPTIONS sip:a@b?X=y SIP/2.0").unwrap_err(),
            ParseError::BadRequestUri
        );
    }

    #[test]
    fn response_building() {
        let Message::Request(r) = Message::parse(OPTIONS).unwrap() else {
            panic!("request")
        };
        let mut resp = Response::from_request(&r, 200);
        resp.set_to_tag("xyz").unwrap();
        assert_eq!(resp.headers.to_addr().unwrap().tag(), Some("xyz"));
        assert_eq!(resp.headers.cseq().unwrap().seq, 8);
        assert_eq!(resp.headers.count("Via"), 1);
        assert!(!resp.headers.contains("Max-Forwards"));
        let m = Message::parse(&resp.to_bytes()).unwrap();
        assert_eq!(m.as_response().unwrap().status, 200);
    }

    #[test]
    fn errors_get_answers() {
        let bad = String::from_utf8_lossy(OPTIONS).replace("CSeq: 8 OPTIONS", "CSeq: 8 INVITE");
        let e = Message::parse(bad.as_bytes()).unwrap_err();
        assert_eq!(e, ParseError::CSeqMethodMismatch);
        let r = error_response(bad.as_bytes(), e, &Limits::default()).unwrap();
        assert_eq!(r.status, 400);
        assert!(r.reason.contains("CSeq"), "{}", r.reason);
        assert!(r.headers.to_addr().unwrap().tag().is_some());

        let v7 = String::from_utf8_lossy(OPTIONS).replace("SIP/2.0\r\n", "SIP/7.0\r\n");
        let e = Message::parse(v7.as_bytes()).unwrap_err();
        assert_eq!(e, ParseError::UnsupportedVersion);
        assert_eq!(
            error_response(v7.as_bytes(), e, &Limits::default())
                .unwrap()
                .status,
            505
        );

        // A response or an ACK is never answered.
        assert!(error_response(
            b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",
            ParseError::BadHeaderLine,
            &Limits::default()
        )
        .is_none());
        let ack = String::from_utf8_lossy(OPTIONS).replace("OPTIONS", "ACK");
        assert!(error_response(
            ack.as_bytes(),
            ParseError::BadHeaderLine,
            &Limits::default()
        )
        .is_none());
    }
}
