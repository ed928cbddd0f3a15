//! The generic SDP model (RFC 8866): a parsed session description that keeps
//! every line it understands structurally and every attribute verbatim, and
//! writes itself back canonically.
//!
//! The parser is strict about structure (known line types, mandatory `v=`,
//! `o=`, `s=`, well-formed `o=`/`c=`/`m=`/`t=`/`b=` lines, PTs and ports in
//! range, limits on size) and tolerant about what real peers get wrong: `LF`
//! instead of `CRLF`, blank lines, trailing white space, runs of spaces between
//! fields, session-level lines out of order, a missing `t=` line, an empty
//! `s=` line. The writer always emits `CRLF` and the RFC order
//! (`v o s i u e p c b t r z k a`, then per media `m i c b k a`).

use std::fmt::{self, Write as _};

use super::error::SdpError;

/// Largest SDP body accepted, in bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Most lines accepted in one body.
pub const MAX_LINES: usize = 4096;
/// Most media sections accepted in one body.
pub const MAX_MEDIA: usize = 64;

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (written as `-` when empty).
    pub session_name: String,
    /// `i=`.
    pub info: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines (written as `t=0 0` when empty).
    pub times: Vec<Timing>,
    /// `z=`.
    pub time_zones: Option<String>,
    /// Session-level `k=`.
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Media sections, in order.
    pub media: Vec<MediaDescription>,
}

/// The `o=` line. Fields are kept as text: peers disagree on how large a
/// session id may be, and we only ever compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id.
    pub session_id: String,
    /// Session version.
    pub session_version: String,
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// Unicast address of the originator.
    pub address: String,
}

/// A `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// Address, possibly with `/ttl[/count]` for multicast.
    pub address: String,
}

/// A `b=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// Type (`AS`, `CT`, `TIAS`, ...).
    pub bwtype: String,
    /// Value.
    pub value: String,
}

/// A `t=` line and the `r=` lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time.
    pub start: String,
    /// Stop time.
    pub stop: String,
    /// `r=` lines, verbatim.
    pub repeats: Vec<String>,
}

/// An `a=` line: a property (`a=rtcp-mux`) or a value (`a=mid:0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name (before the colon).
    pub name: String,
    /// Value (after the colon), verbatim; `None` for a property attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// A value attribute.
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }

    /// A property attribute (no value).
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
        }
    }
}

/// One media section (`m=` and the lines up to the next `m=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, `application`, ...).
    pub media: String,
    /// Transport port; 0 rejects or disables the stream.
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// Transport protocol (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`, ...).
    pub proto: String,
    /// Media formats (payload types for RTP protocols), in order.
    pub formats: Vec<String>,
    /// `i=`.
    pub info: Option<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Media-level `k=`.
    pub key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A media section with no optional lines.
    pub fn new(media: &str, port: u16, proto: &str, formats: Vec<String>) -> Self {
        Self {
            media: media.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats,
            info: None,
            connection: None,
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// The value of the first attribute called `name` (ASCII case-insensitive).
    /// `Some("")` for a property attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }

    /// Values of every attribute called `name`.
    pub fn attrs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        iter_attrs(&self.attributes, name)
    }

    /// Whether an attribute called `name` is present.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// Appends a value attribute.
    pub fn push_attr(&mut self, name: &str, value: impl Into<String>) {
        self.attributes.push(Attribute::new(name, value));
    }

    /// Appends a property attribute.
    pub fn push_flag(&mut self, name: &str) {
        self.attributes.push(Attribute::flag(name));
    }
}

impl SessionDescription {
    /// An empty description with the given origin, `s=-`, `t=0 0`.
    pub fn new(origin: Origin) -> Self {
        Self {
            origin,
            session_name: "-".to_owned(),
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            times: vec![Timing {
                start: "0".to_owned(),
                stop: "0".to_owned(),
                repeats: Vec::new(),
            }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The value of the first session-level attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        find_attr(&self.attributes, name)
    }

    /// Values of every session-level attribute called `name`.
    pub fn attrs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        iter_attrs(&self.attributes, name)
    }

    /// Whether a session-level attribute called `name` is present.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// Appends a session-level value attribute.
    pub fn push_attr(&mut self, name: &str, value: impl Into<String>) {
        self.attributes.push(Attribute::new(name, value));
    }

    /// Appends a session-level property attribute.
    pub fn push_flag(&mut self, name: &str) {
        self.attributes.push(Attribute::flag(name));
    }

    /// Writes the description as bytes (CRLF line endings).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Parses a body. Never panics; see the module documentation for what is
    /// accepted.
    pub fn parse(data: &[u8]) -> Result<Self, SdpError> {
        parse(data)
    }
}

fn find_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

fn iter_attrs<'a>(attrs: &'a [Attribute], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    attrs
        .iter()
        .filter(move |a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

// ---------------------------------------------------------------------------
// Parser

fn malformed(line: u32, reason: &'static str) -> SdpError {
    SdpError::Malformed { line, reason }
}

/// A token as RFC 8866 defines it (for attribute names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'{'
                        | b'|'
                        | b'}'
                        | b'~'
                )
        })
}

fn parse_connection(v: &str, n: u32) -> Result<Connection, SdpError> {
    let mut it = v.split_ascii_whitespace();
    let (Some(net_type), Some(addr_type), Some(address), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(malformed(n, "c= needs <nettype> <addrtype> <address>"));
    };
    Ok(Connection {
        net_type: net_type.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_bandwidth(v: &str, n: u32) -> Result<Bandwidth, SdpError> {
    let Some((t, val)) = v.split_once(':') else {
        return Err(malformed(n, "b= needs <type>:<value>"));
    };
    let (t, val) = (t.trim(), val.trim());
    if !is_token(t) || val.is_empty() || !val.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(n, "b= needs <type>:<digits>"));
    }
    Ok(Bandwidth {
        bwtype: t.to_owned(),
        value: val.to_owned(),
    })
}

fn parse_origin(v: &str, n: u32) -> Result<Origin, SdpError> {
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let [username, session_id, session_version, net_type, addr_type, address] = f[..] else {
        return Err(malformed(n, "o= needs six fields"));
    };
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: session_version.to_owned(),
        net_type: net_type.to_owned(),
        addr_type: addr_type.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_timing(v: &str, n: u32) -> Result<Timing, SdpError> {
    let mut it = v.split_ascii_whitespace();
    let (Some(start), Some(stop), None) = (it.next(), it.next(), it.next()) else {
        return Err(malformed(n, "t= needs <start> <stop>"));
    };
    if ![start, stop]
        .iter()
        .all(|s| s.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(malformed(n, "t= times must be decimal"));
    }
    Ok(Timing {
        start: start.to_owned(),
        stop: stop.to_owned(),
        repeats: Vec::new(),
    })
}

fn parse_attribute(v: &str, n: u32) -> Result<Attribute, SdpError> {
    let (name, value) = match v.split_once(':') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (v, None),
    };
    if !is_token(name) {
        return Err(malformed(n, "attribute name is not a token"));
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

fn parse_media(v: &str, n: u32) -> Result<MediaDescription, SdpError> {
    let mut it = v.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(malformed(n, "m= needs <media> <port> <proto> <fmt>..."));
    };
    if !is_token(media) {
        return Err(malformed(n, "m= media type is not a token"));
    }
    let (port, port_count) = match port.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port, None),
    };
    let port: u16 = parse_decimal(port).ok_or(malformed(n, "m= port out of range"))?;
    let port_count = match port_count {
        Some(c) => Some(parse_decimal(c).ok_or(malformed(n, "m= port count out of range"))?),
        None => None,
    };
    let formats: Vec<String> = it.map(str::to_owned).collect();
    let rtp = proto.to_ascii_uppercase().contains("RTP/");
    if rtp {
        for f in &formats {
            match parse_decimal::<u8>(f) {
                Some(pt) if pt <= 127 => {}
                _ => return Err(malformed(n, "m= payload type is not 0..127")),
            }
        }
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        info: None,
        connection: None,
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    })
}

/// Parses a plain decimal number (no sign, no spaces, at most 10 digits).
pub(crate) fn parse_decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn set_once<T>(slot: &mut Option<T>, v: T, n: u32, what: &'static str) -> Result<(), SdpError> {
    if slot.is_some() {
        return Err(malformed(n, what));
    }
    *slot = Some(v);
    Ok(())
}

fn parse(data: &[u8]) -> Result<SessionDescription, SdpError> {
    if data.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge);
    }
    let text = std::str::from_utf8(data).map_err(|_| SdpError::NotUtf8)?;
    let mut version_seen = false;
    let mut origin: Option<Origin> = None;
    let mut session_name: Option<String> = None;
    let mut info = None;
    let mut uri = None;
    let mut emails = Vec::new();
    let mut phones = Vec::new();
    let mut connection = None;
    let mut bandwidths = Vec::new();
    let mut times: Vec<Timing> = Vec::new();
    let mut time_zones = None;
    let mut key = None;
    let mut attributes = Vec::new();
    let mut media: Vec<MediaDescription> = Vec::new();

    let mut count = 0usize;
    for (i, raw) in text.split('\n').enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.bytes().any(|b| b == b'\r' || b == 0) {
            return Err(malformed(n, "stray CR or NUL"));
        }
        let line = line.trim_end_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_LINES {
            return Err(SdpError::TooManyLines);
        }
        let b = line.as_bytes();
        if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
            return Err(malformed(n, "not a <type>=<value> line"));
        }
        let kind = b[0];
        let value = &line[2..];
        if !version_seen {
            if kind != b'v' {
                return Err(malformed(n, "the first line must be v="));
            }
            if value.trim() != "0" {
                return Err(malformed(n, "unsupported SDP version"));
            }
            version_seen = true;
            continue;
        }
        if let Some(m) = media.last_mut() {
            match kind {
                b'm' => {}
                b'i' => {
                    set_once(&mut m.info, value.to_owned(), n, "duplicate i= line")?;
                    continue;
                }
                b'c' => {
                    let c = parse_connection(value, n)?;
                    set_once(&mut m.connection, c, n, "duplicate c= line")?;
                    continue;
                }
                b'b' => {
                    m.bandwidths.push(parse_bandwidth(value, n)?);
                    continue;
                }
                b'k' => {
                    set_once(&mut m.key, value.to_owned(), n, "duplicate k= line")?;
                    continue;
                }
                b'a' => {
                    m.attributes.push(parse_attribute(value, n)?);
                    continue;
                }
                _ => return Err(malformed(n, "line type not allowed in a media section")),
            }
        }
        match kind {
            b'v' => return Err(malformed(n, "duplicate v= line")),
            b'o' => set_once(&mut origin, parse_origin(value, n)?, n, "duplicate o= line")?,
            b's' => set_once(&mut session_name, value.to_owned(), n, "duplicate s= line")?,
            b'i' => set_once(&mut info, value.to_owned(), n, "duplicate i= line")?,
            b'u' => set_once(&mut uri, value.to_owned(), n, "duplicate u= line")?,
            b'e' => emails.push(value.to_owned()),
            b'p' => phones.push(value.to_owned()),
            b'c' => set_once(
                &mut connection,
                parse_connection(value, n)?,
                n,
                "duplicate c= line",
            )?,
            b'b' => bandwidths.push(parse_bandwidth(value, n)?),
            b't' => times.push(parse_timing(value, n)?),
            b'r' => match times.last_mut() {
                Some(t) => t.repeats.push(value.to_owned()),
                None => return Err(malformed(n, "r= without t=")),
            },
            b'z' => set_once(&mut time_zones, value.to_owned(), n, "duplicate z= line")?,
            b'k' => set_once(&mut key, value.to_owned(), n, "duplicate k= line")?,
            b'a' => attributes.push(parse_attribute(value, n)?),
            b'm' => {
                if media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooManyLines);
                }
                media.push(parse_media(value, n)?);
            }
            _ => return Err(malformed(n, "unknown line type")),
        }
    }
    if !version_seen {
        return Err(SdpError::Empty);
    }
    let origin = origin.ok_or(SdpError::MissingLine("o="))?;
    let session_name = session_name.ok_or(SdpError::MissingLine("s="))?;
    Ok(SessionDescription {
        origin,
        session_name,
        info,
        uri,
        emails,
        phones,
        connection,
        bandwidths,
        times,
        time_zones,
        key,
        attributes,
        media,
    })
}

// ---------------------------------------------------------------------------
// Writer

fn write_line(f: &mut fmt::Formatter<'_>, kind: char, value: &str) -> fmt::Result {
    f.write_char(kind)?;
    f.write_char('=')?;
    f.write_str(value)?;
    f.write_str("\r\n")
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

fn write_attrs(f: &mut fmt::Formatter<'_>, attrs: &[Attribute]) -> fmt::Result {
    for a in attrs {
        writeln_crlf(f, format_args!("a={a}"))?;
    }
    Ok(())
}

fn write_bandwidths(f: &mut fmt::Formatter<'_>, bws: &[Bandwidth]) -> fmt::Result {
    for b in bws {
        writeln_crlf(f, format_args!("b={}:{}", b.bwtype, b.value))?;
    }
    Ok(())
}

fn writeln_crlf(f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>) -> fmt::Result {
    f.write_fmt(args)?;
    f.write_str("\r\n")
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(c) = self.port_count {
            write!(f, "/{c}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt_ in &self.formats {
            write!(f, " {fmt_}")?;
        }
        f.write_str("\r\n")?;
        if let Some(i) = &self.info {
            write_line(f, 'i', i)?;
        }
        if let Some(c) = &self.connection {
            writeln_crlf(f, format_args!("c={c}"))?;
        }
        write_bandwidths(f, &self.bandwidths)?;
        if let Some(k) = &self.key {
            write_line(f, 'k', k)?;
        }
        write_attrs(f, &self.attributes)
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_line(f, 'v', "0")?;
        writeln_crlf(f, format_args!("o={}", self.origin))?;
        let name = if self.session_name.trim().is_empty() {
            "-"
        } else {
            &self.session_name
        };
        write_line(f, 's', name)?;
        if let Some(i) = &self.info {
            write_line(f, 'i', i)?;
        }
        if let Some(u) = &self.uri {
            write_line(f, 'u', u)?;
        }
        for e in &self.emails {
            write_line(f, 'e', e)?;
        }
        for p in &self.phones {
            write_line(f, 'p', p)?;
        }
        if let Some(c) = &self.connection {
            writeln_crlf(f, format_args!("c={c}"))?;
        }
        write_bandwidths(f, &self.bandwidths)?;
        if self.times.is_empty() {
            write_line(f, 't', "0 0")?;
        }
        for t in &self.times {
            writeln_crlf(f, format_args!("t={} {}", t.start, t.stop))?;
            for r in &t.repeats {
                write_line(f, 'r', r)?;
            }
        }
        if let Some(z) = &self.time_zones {
            write_line(f, 'z', z)?;
        }
        if let Some(k) = &self.key {
            write_line(f, 'k', k)?;
        }
        write_attrs(f, &self.attributes)?;
        for m in &self.media {
            m.fmt(f)?;
        }
        Ok(())
    }
}
