//! A small SIP message codec, sans-IO: what the simulated endpoints need
//! to read Strait's messages (start line, headers with their compact forms,
//! body) and to write their own. Deliberately independent of Strait's own
//! parser, so the load test is also an interoperability check.

use std::fmt;
use std::fmt::Write as _;

/// Largest message accepted (bytes).
pub const MAX_MESSAGE: usize = 65_536;
/// Most header lines accepted.
const MAX_HEADERS: usize = 128;

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad SIP message: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// Method, as written.
        method: String,
        /// Request-URI.
        uri: String,
    },
    /// `SIP/2.0 status reason`.
    Response {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A parsed (or built) SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMsg {
    /// Start line.
    pub start: Start,
    /// Headers in order, names in their full form as written (compact forms expanded).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The full name of a compact header name (RFC 3261 §7.3.3 and friends).
fn expand(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'v' => "Via",
        b'f' => "From",
        b't' => "To",
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'k' => "Supported",
        b'e' => "Content-Encoding",
        b's' => "Subject",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'u' => "Allow-Events",
        _ => name,
    }
}

/// A parameter of a header value such as `<sip:a@b>;tag=x;expires=60`:
/// parameters after the URI (after `>` when the value has one).
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let rest = match value.find('>') {
        Some(i) => &value[i + 1..],
        None => value.split_once(';').map_or("", |(_, r)| r),
    };
    rest.split(';').find_map(|p| {
        let p = p.trim();
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The URI inside a name-addr (`"x" <sip:a@b>;p` -> `sip:a@b`), or the
/// value up to its parameters for an addr-spec.
pub fn addr_uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or("").trim(),
    }
}

impl SipMsg {
    /// Parses one whole message (a datagram or a WebSocket message).
    pub fn parse(data: &[u8]) -> Result<SipMsg, ParseError> {
        if data.len() > MAX_MESSAGE {
            return Err(ParseError("too long"));
        }
        let split = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, i + 4))
            .or_else(|| {
                data.windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| (i, i + 2))
            })
            .ok_or(ParseError("no end of headers"))?;
        let head = std::str::from_utf8(&data[..split.0]).map_err(|_| ParseError("not UTF-8"))?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let first = lines.next().ok_or(ParseError("empty"))?;
        let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let status: u16 = code.parse().map_err(|_| ParseError("bad status"))?;
            if !(100..=699).contains(&status) {
                return Err(ParseError("bad status"));
            }
            Start::Response {
                status,
                reason: reason.to_string(),
            }
        } else {
            let mut p = first.split(' ');
            let (Some(method), Some(uri), Some("SIP/2.0"), None) =
                (p.next(), p.next(), p.next(), p.next())
            else {
                return Err(ParseError("bad request line"));
            };
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(ParseError("bad method"));
            }
            Start::Request {
                method: method.to_string(),
                uri: uri.to_string(),
            }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation of the previous header.
                let last = headers.last_mut().ok_or(ParseError("folding first"))?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or(ParseError("header without ':'"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(ParseError("empty header name"));
            }
            if headers.len() >= MAX_HEADERS {
                return Err(ParseError("too many headers"));
            }
            headers.push((expand(name).to_string(), value.trim().to_string()));
        }
        let rest = &data[split.1..];
        let body = match headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        {
            Some((_, v)) => {
                let n: usize = v.parse().map_err(|_| ParseError("bad Content-Length"))?;
                if n > rest.len() {
                    return Err(ParseError("body shorter than Content-Length"));
                }
                rest[..n].to_vec()
            }
            None => rest.to_vec(),
        };
        Ok(SipMsg {
            start,
            headers,
            body,
        })
    }

    /// The first value of header `name` (full name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name`, comma-separated values not split.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            Start::Response { status, .. } => Some(status),
            Start::Request { .. } => None,
        }
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            Start::Request { uri, .. } => Some(uri),
            Start::Response { .. } => None,
        }
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.header("CSeq")?;
        let (n, m) = v.split_once(char::is_whitespace)?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The branch of the topmost Via.
    pub fn via_branch(&self) -> Option<&str> {
        let via = self.header("Via")?;
        let first = via.split(',').next()?;
        header_param(first, "branch")
    }

    /// The To tag.
    pub fn to_tag(&self) -> Option<&str> {
        header_param(self.header("To")?, "tag")
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&str> {
        header_param(self.header("From")?, "tag")
    }

    /// The URI of the first Contact.
    pub fn contact_uri(&self) -> Option<&str> {
        self.header("Contact").map(addr_uri)
    }

    /// The body as text (empty if not UTF-8).
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

/// Writes messages: start line, headers in order, then Content-Length and
/// the body.
#[derive(Debug, Clone)]
pub struct Builder {
    text: String,
}

impl Builder {
    /// A request.
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            text: format!("{method} {uri} SIP/2.0\r\n"),
        }
    }

    /// A response copying Via, From, To, Call-ID and CSeq from `req`; `to_tag`
    /// is added to To when it has none.
    pub fn response(req: &SipMsg, status: u16, reason: &str, to_tag: Option<&str>) -> Self {
        let mut b = Self {
            text: format!("SIP/2.0 {status} {reason}\r\n"),
        };
        for v in req.headers_named("Via") {
            b = b.header("Via", v);
        }
        if let Some(f) = req.header("From") {
            b = b.header("From", f);
        }
        if let Some(t) = req.header("To") {
            match to_tag {
                Some(tag) if header_param(t, "tag").is_none() => {
                    b = b.header("To", &format!("{t};tag={tag}"));
                }
                _ => b = b.header("To", t),
            }
        }
        for name in ["Call-ID", "CSeq"] {
            if let Some(v) = req.header(name) {
                b = b.header(name, v);
            }
        }
        b
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let _ = write!(self.text, "{name}: {value}\r\n");
        self
    }

    /// Finishes with `body` (Content-Type given when the body is not empty).
    pub fn body(mut self, content_type: Option<&str>, body: &str) -> String {
        if let Some(ct) = content_type {
            let _ = write!(self.text, "Content-Type: {ct}\r\n");
        }
        let _ = write!(self.text, "Content-Length: {}\r\n\r\n{body}", body.len());
        self.text
    }

    /// Finishes without a body.
    pub fn finish(self) -> String {
        self.body(None, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_responses() {
        let text = "INVITE sip:alice@127.0.0.1 SIP/2.0\r\n\
            v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport\r\n\
            Via: SIP/2.0/UDP 10.0.0.1\r\n\
            f: <sip:bob@x>;tag=ft\r\nTo: \"A\" <sip:alice@y;transport=ws>\r\n\
            i: cid-1\r\nCSeq: 7 INVITE\r\nm: <sip:k@h.invalid;transport=ws>;expires=60\r\n\
            Subject: a\r\n b\r\nl: 4\r\n\r\nbodyEXTRA";
        let m = SipMsg::parse(text.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.uri(), Some("sip:alice@127.0.0.1"));
        assert_eq!(m.via_branch(), Some("z9hG4bKabc"));
        assert_eq!(m.headers_named("via").count(), 2);
        assert_eq!(m.from_tag(), Some("ft"));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.call_id(), Some("cid-1"));
        assert_eq!(m.cseq(), Some((7, "INVITE")));
        assert_eq!(m.contact_uri(), Some("sip:k@h.invalid;transport=ws"));
        assert_eq!(
            header_param(m.header("Contact").unwrap(), "expires"),
            Some("60")
        );
        assert_eq!(m.header("subject"), Some("a b"));
        assert_eq!(m.body, b"body");

        let r = SipMsg::parse(
            b"SIP/2.0 401 Unauthorized\r\nTo: <sip:a@b>;tag=x\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status(), Some(401));
        assert_eq!(r.to_tag(), Some("x"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"hello",
            b"INVITE sip:a SIP/2.0\r\nVia x\r\n\r\n",
            b"SIP/2.0 99 X\r\n\r\n",
            b"SIP/2.0 abc X\r\n\r\n",
            b"INVITE sip:a SIP/3.0\r\n\r\n",
            b"INVITE sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
            b"INVITE sip:a SIP/2.0\r\n folded\r\n\r\n",
            b"INV1TE sip:a SIP/2.0\r\n\r\n",
        ] {
            assert!(
                SipMsg::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn builds_what_it_parses() {
        let req = Builder::request("BYE", "sip:x@y")
            .header("Via", "SIP/2.0/WSS h.invalid;branch=z9hG4bK1")
            .header("From", "<sip:a@b>;tag=1")
            .header("To", "<sip:c@d>")
            .header("Call-ID", "c1")
            .header("CSeq", "2 BYE")
            .body(Some("text/plain"), "hi");
        let m = SipMsg::parse(req.as_bytes()).unwrap();
        assert_eq!(m.body, b"hi");
        let resp = Builder::response(&m, 200, "OK", Some("tt")).finish();
        let r = SipMsg::parse(resp.as_bytes()).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.to_tag(), Some("tt"));
        assert_eq!(r.via_branch(), Some("z9hG4bK1"));
        assert_eq!(r.cseq(), Some((2, "BYE")));
        assert_eq!(addr_uri("sip:a@b;transport=udp"), "sip:a@b");
    }
}
