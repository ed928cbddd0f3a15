//! URIs (RFC 3261 §19.1, §25.1): SIP and SIPS URIs with typed access, other
//! schemes kept opaque (so a caller can answer 416), hosts (including IPv6
//! references, RFC 5118), and `;name=value` parameter lists.
//!
//! All types borrow from the text they were parsed from (`Cow<'a, str>`);
//! `into_owned()` detaches them (`'static`) for storage. `Display` writes the
//! canonical form, which parses back to an equal value.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::ParseError;
use super::text::{
    is_token, is_token_byte, percent_decode, quote, quoted_len, trim_ws, trim_ws_start,
};

// ---------------------------------------------------------------------------------------------
// character classes

fn is_mark(b: u8) -> bool {
    matches!(
        b,
        b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
    )
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || is_mark(b)
}

fn is_user_byte(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/'
        )
}

fn is_password_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_paramchar(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn is_hchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'&' | b'='
        )
}

fn is_uric(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'%' | b';'
                | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b'['
                | b']'
                | b'#'
        )
}

/// Characters of an unquoted header parameter value: `token` plus the `:[]`
/// of an IPv6 `host` (gen-value = token / host / quoted-string).
fn is_gen_value_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b':' | b'[' | b']')
}

// ---------------------------------------------------------------------------------------------
// Host

/// The host part of a URI or Via sent-by.
///
/// Build one with [`Host::parse`] or `From<IpAddr>`; a `Domain` must hold a
/// valid host name (letters, digits, `-`, `.`, `_`).
#[derive(Clone, Debug, Eq)]
pub enum Host<'a> {
    /// A host name, e.g. `example.com` or `df7jal23ls0d.invalid`.
    Domain(Cow<'a, str>),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference, stored as written between the brackets (so that
    /// forwarding does not rewrite it); [`Host::ip`] gives the address.
    /// The RFC 3261 ABNF bug form with `:::` (RFC 5118 §4.10) is tolerated.
    Ipv6(Cow<'a, str>),
}

fn parse_ipv6_lenient(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some(a);
    }
    if s.contains(":::") {
        return s.replacen(":::", "::", 1).parse::<Ipv6Addr>().ok();
    }
    None
}

impl<'a> Host<'a> {
    /// Parses a host: `[v6]`, dotted IPv4, or a host name.
    pub fn parse(s: &'a str) -> Result<Host<'a>, ParseError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(ParseError::BadUri)?;
            if parse_ipv6_lenient(inner).is_none() {
                return Err(ParseError::BadUri);
            }
            return Ok(Host::Ipv6(Cow::Borrowed(inner)));
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(Host::Ipv4(v4));
        }
        let ok = !s.is_empty()
            && s.bytes().any(|b| b.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if ok {
            Ok(Host::Domain(Cow::Borrowed(s)))
        } else {
            Err(ParseError::BadUri)
        }
    }

    /// The IP address if the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(t) => parse_ipv6_lenient(t).map(IpAddr::V6),
        }
    }

    /// Whether this is a host name ending in `.invalid` (what browsers put in
    /// Via and Contact, RFC 7118 §5.2).
    pub fn is_invalid_domain(&self) -> bool {
        match self {
            Host::Domain(d) => {
                let d = d.trim_end_matches('.').as_bytes();
                d.len() >= 8 && d[d.len() - 8..].eq_ignore_ascii_case(b".invalid")
            }
            _ => false,
        }
    }

    /// Whether the host is the given IP address.
    pub fn is_ip(&self, ip: IpAddr) -> bool {
        self.ip() == Some(ip)
    }

    /// Detaches from the parsed text.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Domain(d) => Host::Domain(Cow::Owned(d.into_owned())),
            Host::Ipv4(a) => Host::Ipv4(a),
            Host::Ipv6(t) => Host::Ipv6(Cow::Owned(t.into_owned())),
        }
    }
}

impl From<IpAddr> for Host<'static> {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(Cow::Owned(a.to_string())),
        }
    }
}

/// Hosts compare as RFC 3261 §19.1.4 says: names case-insensitively,
/// addresses by value.
impl PartialEq for Host<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => {
                match (parse_ipv6_lenient(a), parse_ipv6_lenient(b)) {
                    (Some(x), Some(y)) => x == y,
                    _ => a.eq_ignore_ascii_case(b),
                }
            }
            _ => false,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(t) => write!(f, "[{t}]"),
        }
    }
}

/// Parses `host [":" port]`. With `lax_colon`, whitespace may surround the
/// colon (Via sent-by: COLON = SWS ":" SWS).
pub(crate) fn parse_hostport(
    s: &str,
    lax_colon: bool,
) -> Result<(Host<'_>, Option<u16>), ParseError> {
    let (host, rest) = if s.starts_with('[') {
        let end = s.find(']').ok_or(ParseError::BadUri)?;
        (&s[..=end], &s[end + 1..])
    } else {
        let end = if lax_colon {
            s.find([':', ' ', '\t']).unwrap_or(s.len())
        } else {
            s.find(':').unwrap_or(s.len())
        };
        (&s[..end], &s[end..])
    };
    let host = Host::parse(host)?;
    let rest = if lax_colon { trim_ws(rest) } else { rest };
    if rest.is_empty() {
        return Ok((host, None));
    }
    let port = rest.strip_prefix(':').ok_or(ParseError::BadUri)?;
    let port = if lax_colon { trim_ws_start(port) } else { port };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadUri);
    }
    let port: u16 = port.parse().map_err(|_| ParseError::BadUri)?;
    Ok((host, Some(port)))
}

// ---------------------------------------------------------------------------------------------
// Params

/// One `name[=value]` parameter. The value is kept as written (a quoted
/// value keeps its quotes; see [`Param::value_unquoted`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    name: Cow<'a, str>,
    value: Option<Cow<'a, str>>,
}

impl<'a> Param<'a> {
    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as written (`None` for a flag such as `lr`).
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The value with quotes and quoted-pairs resolved.
    pub fn value_unquoted(&self) -> Option<Cow<'_, str>> {
        self.value.as_deref().map(super::text::unquote)
    }

    fn into_owned(self) -> Param<'static> {
        Param {
            name: Cow::Owned(self.name.into_owned()),
            value: self.value.map(|v| Cow::Owned(v.into_owned())),
        }
    }
}

/// An ordered list of parameters (URI parameters or header parameters).
/// Names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    list: Vec<Param<'a>>,
}

impl<'a> Params<'a> {
    /// An empty list.
    pub fn new() -> Self {
        Params { list: Vec::new() }
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// All parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = &Param<'a>> {
        self.list.iter()
    }

    /// The first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&Param<'a>> {
        self.list.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Whether a parameter called `name` is present (with or without value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The raw value of `name` (`None` if absent or a flag).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|p| p.value())
    }

    /// The value of `name`, unquoted.
    pub fn value_unquoted(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).and_then(|p| p.value_unquoted())
    }

    /// Sets `name` (replacing the first occurrence, or appending). The name
    /// must be a token; the value must be a token, a host (IPv6 included) or a
    /// complete quoted string. Use [`Params::set_quoted`] for free text.
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), ParseError> {
        if !is_token(name) {
            return Err(ParseError::BadHeader("parameter"));
        }
        if let Some(v) = value {
            let ok = if v.starts_with('"') {
                quoted_len(v.as_bytes()) == Some(v.len())
            } else {
                !v.is_empty() && v.bytes().all(is_gen_value_byte)
            };
            if !ok {
                return Err(ParseError::BadHeader("parameter"));
            }
        }
        let value = value.map(|v| Cow::Owned(v.to_owned()));
        match self
            .list
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value,
            None => self.list.push(Param {
                name: Cow::Owned(name.to_owned()),
                value,
            }),
        }
        Ok(())
    }

    /// Sets `name` to `text` as a quoted string (header parameters only, e.g.
    /// `+sip.instance`).
    pub fn set_quoted(&mut self, name: &str, text: &str) -> Result<(), ParseError> {
        self.set(name, Some(&quote(text)))
    }

    /// Removes every parameter called `name`; returns whether one was removed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|p| !p.name.eq_ignore_ascii_case(name));
        before != self.list.len()
    }

    /// Detaches from the parsed text.
    pub fn into_owned(self) -> Params<'static> {
        Params {
            list: self.list.into_iter().map(Param::into_owned).collect(),
        }
    }

    /// Parses URI parameters: `s` is empty or starts with `;`; no whitespace.
    pub(crate) fn parse_uri(s: &'a str) -> Result<Params<'a>, ParseError> {
        let mut list = Vec::new();
        if s.is_empty() {
            return Ok(Params { list });
        }
        let s = s.strip_prefix(';').ok_or(ParseError::BadUri)?;
        for item in s.split(';') {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            };
            if name.is_empty() || !name.bytes().all(is_paramchar) {
                return Err(ParseError::BadUri);
            }
            if let Some(v) = value {
                if v.is_empty() || !v.bytes().all(is_paramchar) {
                    return Err(ParseError::BadUri);
                }
            }
            list.push(Param {
                name: Cow::Borrowed(name),
                value: value.map(Cow::Borrowed),
            });
        }
        Ok(Params { list })
    }

    /// Parses header parameters: `*( SEMI generic-param )` where SEMI and
    /// EQUAL may carry whitespace; the whole of `s` must be consumed.
    pub(crate) fn parse_header(mut s: &'a str) -> Result<Params<'a>, ()> {
        let mut list = Vec::new();
        loop {
            s = trim_ws_start(s);
            if s.is_empty() {
                return Ok(Params { list });
            }
            s = trim_ws_start(s.strip_prefix(';').ok_or(())?);
            let n = s.bytes().take_while(|&b| is_token_byte(b)).count();
            if n == 0 {
                return Err(());
            }
            let name = &s[..n];
            s = trim_ws_start(&s[n..]);
            let mut value = None;
            if let Some(rest) = s.strip_prefix('=') {
                let rest = trim_ws_start(rest);
                let n = if rest.starts_with('"') {
                    quoted_len(rest.as_bytes()).ok_or(())?
                } else {
                    rest.bytes().take_while(|&b| is_gen_value_byte(b)).count()
                };
                if n == 0 {
                    return Err(());
                }
                value = Some(Cow::Borrowed(&rest[..n]));
                s = &rest[n..];
                // A value must be followed by whitespace, `;` or the end.
                if !(s.is_empty() || s.starts_with([';', ' ', '\t'])) {
                    return Err(());
                }
            }
            list.push(Param {
                name: Cow::Borrowed(name),
                value,
            });
        }
    }
}

impl fmt::Display for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.list {
            f.write_str(";")?;
            f.write_str(&p.name)?;
            if let Some(v) = &p.value {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// URIs

/// A `sip:` or `sips:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri<'a> {
    secure: bool,
    user: Option<Cow<'a, str>>,
    password: Option<Cow<'a, str>>,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<Cow<'a, str>>,
}

/// A URI of another scheme (`tel:`, `http:`, `urn:` ...), kept opaque.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbsoluteUri<'a> {
    scheme: Cow<'a, str>,
    rest: Cow<'a, str>,
}

impl AbsoluteUri<'_> {
    /// The scheme as written.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Everything after the `:`.
    pub fn rest(&self) -> &str {
        &self.rest
    }
}

/// A URI as found in a Request-URI or a name-addr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// Any other scheme: the caller should answer 416 where it needs a SIP URI.
    Other(AbsoluteUri<'a>),
}

fn valid_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

impl<'a> Uri<'a> {
    /// Parses a URI (no surrounding whitespace or brackets).
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let (scheme, rest) = s.split_once(':').ok_or(ParseError::BadUri)?;
        if !valid_scheme(scheme) {
            return Err(ParseError::BadUri);
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_after_scheme(scheme.len() == 4, rest).map(Uri::Sip);
        }
        if rest.is_empty() || !rest.bytes().all(is_uric) {
            return Err(ParseError::BadUri);
        }
        Ok(Uri::Other(AbsoluteUri {
            scheme: Cow::Borrowed(scheme),
            rest: Cow::Borrowed(rest),
        }))
    }

    /// The scheme (`sip`, `sips` or as written).
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other(o) => &o.scheme,
        }
    }

    /// The SIP URI, if it is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }

    /// The SIP URI, mutably.
    pub fn as_sip_mut(&mut self) -> Option<&mut SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }

    /// Whether this is a `sip:`/`sips:` URI.
    pub fn is_sip(&self) -> bool {
        matches!(self, Uri::Sip(_))
    }

    /// RFC 3261 §19.1.4 equivalence (non-SIP URIs: exact, scheme
    /// case-insensitive).
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Other(a), Uri::Other(b)) => {
                a.scheme.eq_ignore_ascii_case(&b.scheme) && a.rest == b.rest
            }
            _ => false,
        }
    }

    /// Detaches from the parsed text.
    pub fn into_owned(self) -> Uri<'static> {
        match self {
            Uri::Sip(u) => Uri::Sip(u.into_owned()),
            Uri::Other(o) => Uri::Other(AbsoluteUri {
                scheme: Cow::Owned(o.scheme.into_owned()),
                rest: Cow::Owned(o.rest.into_owned()),
            }),
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other(o) => write!(f, "{}:{}", o.scheme, o.rest),
        }
    }
}

impl<'a> From<SipUri<'a>> for Uri<'a> {
    fn from(u: SipUri<'a>) -> Uri<'a> {
        Uri::Sip(u)
    }
}

/// Appends `b` percent-escaped unless `keep(b)`.
fn escape_into(out: &mut String, bytes: &[u8], keep: fn(u8) -> bool) {
    for &b in bytes {
        if keep(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

impl<'a> SipUri<'a> {
    /// `sip:<host>`.
    pub fn new(host: Host<'a>) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: None,
        }
    }

    /// Parses a complete `sip:`/`sips:` URI.
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, ParseError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            Uri::Other(_) => Err(ParseError::BadUri),
        }
    }

    fn parse_after_scheme(secure: bool, rest: &'a str) -> Result<SipUri<'a>, ParseError> {
        let (userinfo, hostpart) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (mut user, mut password) = (None, None);
        if let Some(ui) = userinfo {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (ui, None),
            };
            if u.is_empty() || !u.bytes().all(is_user_byte) {
                return Err(ParseError::BadUri);
            }
            if let Some(p) = p {
                if !p.bytes().all(is_password_byte) {
                    return Err(ParseError::BadUri);
                }
            }
            user = Some(Cow::Borrowed(u));
            password = p.map(Cow::Borrowed);
        }
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((h, hd)) => {
                if hd.is_empty() || !hd.bytes().all(is_hchar) {
                    return Err(ParseError::BadUri);
                }
                (h, Some(Cow::Borrowed(hd)))
            }
            None => (hostpart, None),
        };
        let (hp, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = parse_hostport(hp, false)?;
        let params = Params::parse_uri(params)?;
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// Whether this is a `sips:` URI.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Makes this a `sips:` (true) or `sip:` URI.
    pub fn set_secure(&mut self, secure: bool) {
        self.secure = secure;
    }

    /// The user part as written (escapes not resolved).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The user part with `%HH` escapes resolved (may contain any byte).
    pub fn user_decoded(&self) -> Option<Cow<'_, [u8]>> {
        self.user.as_deref().map(percent_decode)
    }

    /// Sets the user part from unescaped text (escaped as needed).
    pub fn set_user(&mut self, user: Option<&str>) {
        self.user = user.map(|u| {
            let mut s = String::with_capacity(u.len());
            escape_into(&mut s, u.as_bytes(), is_user_byte);
            Cow::Owned(s)
        });
    }

    /// Builder form of [`SipUri::set_user`].
    pub fn with_user(mut self, user: &str) -> Self {
        self.set_user(Some(user));
        self
    }

    /// The password as written.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host.
    pub fn host(&self) -> &Host<'a> {
        &self.host
    }

    /// Replaces the host.
    pub fn set_host(&mut self, host: Host<'a>) {
        self.host = host;
    }

    /// The explicit port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Sets or clears the port.
    pub fn set_port(&mut self, port: Option<u16>) {
        self.port = port;
    }

    /// Builder form of [`SipUri::set_port`].
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The URI parameters.
    pub fn params(&self) -> &Params<'a> {
        &self.params
    }

    /// The URI parameters, mutably.
    pub fn params_mut(&mut self) -> &mut Params<'a> {
        &mut self.params
    }

    /// Builder: adds or replaces a parameter (see [`Params::set`]).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Result<Self, ParseError> {
        self.params.set(name, value)?;
        Ok(self)
    }

    /// The `?headers` part as written (never turned into real headers).
    pub fn headers(&self) -> Option<&str> {
        self.headers.as_deref()
    }

    /// Removes the `?headers` part.
    pub fn clear_headers(&mut self) {
        self.headers = None;
    }

    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&str> {
        self.params.value("transport")
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        self.params.value("maddr")
    }

    /// The `user` parameter (`phone`, `ip` ...).
    pub fn user_param(&self) -> Option<&str> {
        self.params.value("user")
    }

    /// Whether `;lr` is present (loose routing, RFC 3261 §16.12).
    pub fn has_lr(&self) -> bool {
        self.params.contains("lr")
    }

    /// Whether `;ob` is present (RFC 5626 outbound).
    pub fn has_ob(&self) -> bool {
        self.params.contains("ob")
    }

    /// The address-of-record form used as a registrar key (RFC 3261 §10.3):
    /// scheme, unescaped-then-canonically-escaped user, lower-case host and
    /// port; parameters and headers dropped.
    pub fn canonical_aor(&self) -> String {
        let mut s = String::from(if self.secure { "sips:" } else { "sip:" });
        if let Some(u) = self.user_decoded() {
            escape_into(&mut s, &u, |b| is_user_byte(b) && b != b'%');
            s.push('@');
        }
        match &self.host {
            Host::Domain(d) => s.push_str(&d.to_ascii_lowercase()),
            Host::Ipv4(a) => s.push_str(&a.to_string()),
            Host::Ipv6(t) => match parse_ipv6_lenient(t) {
                Some(a) => {
                    s.push('[');
                    s.push_str(&a.to_string());
                    s.push(']');
                }
                None => {
                    s.push('[');
                    s.push_str(&t.to_ascii_lowercase());
                    s.push(']');
                }
            },
        }
        if let Some(p) = self.port {
            s.push(':');
            s.push_str(&p.to_string());
        }
        s
    }

    /// RFC 3261 §19.1.4 URI comparison: scheme, user and password
    /// (escapes resolved, case-sensitive), host (case-insensitive), port
    /// (absent differs from explicit), the `user`, `ttl`, `method`, `maddr` and
    /// `transport` parameters when present in either, other parameters when
    /// present in both, and headers.
    pub fn equivalent(&self, other: &SipUri<'_>) -> bool {
        if self.secure != other.secure
            || self.user_decoded() != other.user_decoded()
            || self.password.as_deref().map(percent_decode)
                != other.password.as_deref().map(percent_decode)
            || self.host != other.host
            || self.port != other.port
        {
            return false;
        }
        fn pv<'x>(p: &'x Param<'_>) -> Option<Cow<'x, [u8]>> {
            p.value.as_deref().map(percent_decode)
        }
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            let a = self.params.get(name).map(pv);
            let b = other.params.get(name).map(pv);
            let same = match (&a, &b) {
                (Some(Some(x)), Some(Some(y))) => x.eq_ignore_ascii_case(y),
                _ => a == b,
            };
            if !same {
                return false;
            }
        }
        for p in self.params.iter() {
            if let Some(q) = other.params.get(p.name()) {
                let (a, b) = (pv(p), pv(q));
                let same = match (&a, &b) {
                    (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                    _ => a == b,
                };
                if !same {
                    return false;
                }
            }
        }
        let mut ha: Vec<_> = self.headers.iter().flat_map(|h| h.split('&')).collect();
        let mut hb: Vec<_> = other.headers.iter().flat_map(|h| h.split('&')).collect();
        ha.sort_unstable();
        hb.sort_unstable();
        ha == hb
    }

    /// Detaches from the parsed text.
    pub fn into_owned(self) -> SipUri<'static> {
        SipUri {
            secure: self.secure,
            user: self.user.map(|v| Cow::Owned(v.into_owned())),
            password: self.password.map(|v| Cow::Owned(v.into_owned())),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_owned(),
            headers: self.headers.map(|v| Cow::Owned(v.into_owned())),
        }
    }
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        SipUri::parse(s).expect(s)
    }

    #[test]
    fn sip_uri_components() {
        let u = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!(u.host(), &Host::Domain("example.com".into()));

        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert!(u.params().is_empty());

        let u = sip("sips:alice@[2001:db8::10]:5071;transport=ws;lr;ob?Route=%3Csip:x%3E");
        assert!(u.is_secure());
        assert_eq!(u.port(), Some(5071));
        assert_eq!(u.transport(), Some("ws"));
        assert!(u.has_lr() && u.has_ob());
        assert_eq!(u.headers(), Some("Route=%3Csip:x%3E"));
        assert_eq!(
            u.to_string(),
            "sips:alice@[2001:db8::10]:5071;transport=ws;lr;ob?Route=%3Csip:x%3E"
        );

        let u = sip("sip:[2001:db8::10:5070]");
        assert_eq!(u.port(), None);
        assert!(sip("sip:user@[2001:db8:::192.0.2.1]").host().ip().is_some());
        assert!(sip("sip:b@df7jal23ls0d.invalid;transport=ws")
            .host()
            .is_invalid_domain());
    }

    #[test]
    fn bad_uris() {
        for s in [
            "sip:2001:db8::10",
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:@example.com",
            "sip:",
            "sip:host;",
            "sip:host:99999",
            "sip:ho st",
            "nocolon",
            "1abc:foo",
            "tel:",
        ] {
            assert!(Uri::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn other_schemes_are_opaque() {
        let u = Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert!(!u.is_sip());
        assert_eq!(u.scheme(), "nobodyKnowsThisScheme");
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
        assert!(Uri::parse("tel:+1-201-555-0123").is_ok());
    }

    #[test]
    fn equivalence_and_aor() {
        let a = sip("sip:%61lice@atlanta.com;transport=TCP");
        let b = sip("sip:alice@AtLanTa.CoM;Transport=tcp");
        assert!(a.equivalent(&b));
        assert!(!sip("sip:alice@atlanta.com").equivalent(&sip("sip:ALICE@atlanta.com")));
        assert!(!sip("sip:bob@biloxi.com").equivalent(&sip("sip:bob@biloxi.com:5060")));
        assert!(
            !sip("sip:carol@chicago.com").equivalent(&sip("sip:carol@chicago.com;transport=udp"))
        );
        assert!(sip("sip:carol@chicago.com").equivalent(&sip("sip:carol@chicago.com;newparam=5")));
        assert_eq!(
            sip("sip:n%75ll-%00@Example.COM;user=phone").canonical_aor(),
            "sip:null-%00@example.com"
        );
    }

    #[test]
    fn header_params() {
        let p = Params::parse_header(" ; newparam = newvalue ; secondparam ; q = 0.33").unwrap();
        assert_eq!(p.value("newparam"), Some("newvalue"));
        assert!(p.contains("SECONDPARAM"));
        assert_eq!(p.value("q"), Some("0.33"));
        let p = Params::parse_header(
            r#";+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1"#,
        )
        .unwrap();
        assert_eq!(
            p.value_unquoted("+sip.instance").as_deref(),
            Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
        );
        assert!(Params::parse_header(";;;").is_err());
        assert!(Params::parse_header(";a=\"open").is_err());
        assert!(Params::parse_header(";received=2001:db8::9:255").is_ok());
        let mut p = Params::new();
        p.set("rport", Some("5060")).unwrap();
        p.set("lr", None).unwrap();
        assert!(p.set("bad name", None).is_err());
        assert!(p.set("x", Some("a b")).is_err());
        assert_eq!(p.to_string(), ";rport=5060;lr");
    }
}
