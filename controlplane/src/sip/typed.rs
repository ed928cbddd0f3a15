//! Typed views of the header values a proxy, registrar or B2BUA needs:
//! [`Via`], [`NameAddr`] (From, To, Route, Record-Route, Path, Contact),
//! [`Contact`], [`CSeq`] and [`Method`], [`MediaType`], [`AuthValue`].
//!
//! Each parses one header *value* (one element of a comma-separated list)
//! and borrows from it; `Display` writes the canonical form, and
//! `into_owned()` detaches a value for storage. Use the accessors on
//! [`Headers`](super::Headers) to get them from a message.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use super::error::ParseError;
use super::text::{
    is_token, is_token_byte, is_ws, parse_digits, quote, quoted_len, trim_ws, trim_ws_start,
    unquote, CommaSplit,
};
use super::uri::{parse_hostport, Host, Params, Uri};

// ---------------------------------------------------------------------------------------------
// Method

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1); anything that is
/// a token but not one of the known names is an [`Method::Extension`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Extension(Box<str>),
}

impl Method {
    /// Parses a method token.
    pub fn parse(s: &str) -> Result<Method, ParseError> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            _ if is_token(s) => Method::Extension(s.into()),
            _ => return Err(ParseError::BadMethod),
        })
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// CSeq

/// A CSeq value: sequence number and method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (RFC 3261 §8.1.1.5: below 2**31 when we generate
    /// it; any 32-bit value is accepted).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        const E: ParseError = ParseError::BadHeader("CSeq");
        let s = trim_ws(s);
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        let seq = parse_digits(&s[..n])
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(E)?;
        let rest = &s[n..];
        if !rest.bytes().next().is_some_and(is_ws) {
            return Err(E);
        }
        let method = Method::parse(trim_ws_start(rest)).map_err(|_| E)?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

// ---------------------------------------------------------------------------------------------
// Via

/// One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    protocol_name: Cow<'a, str>,
    protocol_version: Cow<'a, str>,
    transport: Cow<'a, str>,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
}

/// The RFC 3261 branch magic cookie.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

fn take_token(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(|&b| is_token_byte(b)).count();
    (&s[..n], &s[n..])
}

impl<'a> Via<'a> {
    /// A `SIP/2.0/<transport> host[:port]` value without parameters.
    /// `transport` must be a token (`UDP`, `TCP`, `TLS`, `WS`, `WSS` ...).
    pub fn new(transport: &str, host: Host<'a>, port: Option<u16>) -> Result<Self, ParseError> {
        if !is_token(transport) {
            return Err(ParseError::BadHeader("Via"));
        }
        Ok(Via {
            protocol_name: Cow::Borrowed("SIP"),
            protocol_version: Cow::Borrowed("2.0"),
            transport: Cow::Owned(transport.to_owned()),
            host,
            port,
            params: Params::new(),
        })
    }

    /// Parses one via-parm.
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        const E: ParseError = ParseError::BadHeader("Via");
        let s = trim_ws(s);
        let (name, rest) = take_token(s);
        let rest = trim_ws_start(rest).strip_prefix('/').ok_or(E)?;
        let (version, rest) = take_token(trim_ws_start(rest));
        let rest = trim_ws_start(rest).strip_prefix('/').ok_or(E)?;
        let (transport, rest) = take_token(trim_ws_start(rest));
        if name.is_empty() || version.is_empty() || transport.is_empty() {
            return Err(E);
        }
        if !rest.bytes().next().is_some_and(is_ws) {
            return Err(E);
        }
        let rest = trim_ws_start(rest);
        let end = rest.find(';').unwrap_or(rest.len());
        let (host, port) = parse_hostport(trim_ws(&rest[..end]), true).map_err(|_| E)?;
        let params = Params::parse_header(&rest[end..]).map_err(|_| E)?;
        Ok(Via {
            protocol_name: Cow::Borrowed(name),
            protocol_version: Cow::Borrowed(version),
            transport: Cow::Borrowed(transport),
            host,
            port,
            params,
        })
    }

    /// Protocol name and version, e.g. `SIP/2.0`.
    pub fn protocol(&self) -> (&str, &str) {
        (&self.protocol_name, &self.protocol_version)
    }

    /// The transport token as written (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP` ...).
    pub fn transport(&self) -> &str {
        &self.transport
    }

    /// The sent-by host.
    pub fn host(&self) -> &Host<'a> {
        &self.host
    }

    /// The sent-by port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The parameters.
    pub fn params(&self) -> &Params<'a> {
        &self.params
    }

    /// The parameters, mutably.
    pub fn params_mut(&mut self) -> &mut Params<'a> {
        &mut self.params
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// Whether the branch is an RFC 3261 one (magic cookie plus something).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| {
            b.len() > BRANCH_MAGIC_COOKIE.len() && b.starts_with(BRANCH_MAGIC_COOKIE)
        })
    }

    /// The `received` address (with or without brackets, RFC 5118 §4.5).
    pub fn received(&self) -> Option<IpAddr> {
        let v = self.params.value("received")?;
        let v = v
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .unwrap_or(v);
        Host::parse_ip(v)
    }

    /// Whether `rport` is present (RFC 3581), with or without value.
    pub fn has_rport(&self) -> bool {
        self.params.contains("rport")
    }

    /// The `rport` value, if filled in.
    pub fn rport(&self) -> Option<u16> {
        self.params.value("rport").and_then(|v| v.parse().ok())
    }

    /// Sets `received` (IPv6 without brackets, RFC 3261 grammar).
    pub fn set_received(&mut self, ip: IpAddr) {
        let v = ip.to_string();
        self.params
            .set("received", Some(&v))
            .expect("an IP address is a valid gen-value");
    }

    /// Sets `rport=<port>`.
    pub fn set_rport(&mut self, port: u16) {
        let v = port.to_string();
        self.params
            .set("rport", Some(&v))
            .expect("digits are a valid gen-value");
    }

    /// Detaches from the parsed text.
    pub fn into_owned(self) -> Via<'static> {
        Via {
            protocol_name: Cow::Owned(self.protocol_name.into_owned()),
            protocol_version: Cow::Owned(self.protocol_version.into_owned()),
            transport: Cow::Owned(self.transport.into_owned()),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_owned(),
        }
    }
}

impl Host<'_> {
    fn parse_ip(s: &str) -> Option<IpAddr> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(ip);
        }
        Host::parse(s).ok().and_then(|h| h.ip()).or_else(|| {
            let b = format!("[{s}]");
            Host::parse(&b).ok().and_then(|h| h.ip())
        })
    }
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol_name, self.protocol_version, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

// ---------------------------------------------------------------------------------------------
// NameAddr

/// `[display-name] <URI> *(;param)` or `URI *(;param)` (From, To, Contact,
/// Route, Record-Route, Path, Refer-To ...). An addr-spec without brackets is
/// accepted as RFC 3261 allows; everything after its first `;` is then a header
/// parameter. `Display` always writes the bracketed form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display_name: Option<Cow<'a, str>>,
    uri: Uri<'a>,
    params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// `<uri>` with no display name or parameters.
    pub fn new(uri: Uri<'a>) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses one name-addr or addr-spec with its parameters.
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, ParseError> {
        const E: ParseError = ParseError::BadHeader("name-addr");
        let s = trim_ws(s);
        let b = s.as_bytes();
        let mut display = None;
        let mut bracketed: Option<&str> = None;
        if b.first() == Some(&b'"') {
            let n = quoted_len(b).ok_or(E)?;
            display = Some(&s[..n]);
            bracketed = Some(trim_ws_start(&s[n..]));
        } else if b.first() == Some(&b'<') {
            bracketed = Some(s);
        } else {
            // *(token LWS) "<" ? Otherwise an addr-spec.
            let mut i = 0;
            loop {
                let n = b[i..].iter().take_while(|&&c| is_token_byte(c)).count();
                if n == 0 {
                    break;
                }
                let end = i + n;
                let mut j = end;
                while j < b.len() && is_ws(b[j]) {
                    j += 1;
                }
                if b.get(j) == Some(&b'<') {
                    display = Some(&s[..end]);
                    bracketed = Some(&s[j..]);
                    break;
                }
                if j == end || j == b.len() || !is_token_byte(b[j]) {
                    break;
                }
                i = j;
            }
        }
        let (uri, rest) = match bracketed {
            Some(r) => {
                let r = r.strip_prefix('<').ok_or(E)?;
                let gt = r.find('>').ok_or(E)?;
                // Whitespace inside the brackets is not allowed, but it is
                // unambiguous, so we tolerate it (RFC 4475 §3.1.2.7).
                (Uri::parse(trim_ws(&r[..gt])).map_err(|_| E)?, &r[gt + 1..])
            }
            None => {
                let end = s.find(';').unwrap_or(s.len());
                let u = trim_ws(&s[..end]);
                if u.bytes()
                    .any(|c| is_ws(c) || matches!(c, b'?' | b',' | b'<' | b'>' | b'"'))
                {
                    return Err(E);
                }
                (Uri::parse(u).map_err(|_| E)?, &s[end..])
            }
        };
        let params = Params::parse_header(rest).map_err(|_| E)?;
        Ok(NameAddr {
            display_name: display.map(Cow::Borrowed),
            uri,
            params,
        })
    }

    /// The display name as written (a quoted string keeps its quotes).
    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    /// The display name as text (quotes and escapes resolved).
    pub fn display_name_text(&self) -> Option<Cow<'_, str>> {
        self.display_name.as_deref().map(unquote)
    }

    /// Sets the display name from text (written as a quoted string).
    pub fn set_display_name(&mut self, text: Option<&str>) {
        self.display_name = text.map(|t| Cow::Owned(quote(t)));
    }

    /// The URI.
    pub fn uri(&self) -> &Uri<'a> {
        &self.uri
    }

    /// The URI, mutably.
    pub fn uri_mut(&mut self) -> &mut Uri<'a> {
        &mut self.uri
    }

    /// The header parameters (after `>`).
    pub fn params(&self) -> &Params<'a> {
        &self.params
    }

    /// The header parameters, mutably.
    pub fn params_mut(&mut self) -> &mut Params<'a> {
        &mut self.params
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// Sets the `tag` parameter (must be a token).
    pub fn set_tag(&mut self, tag: &str) -> Result<(), ParseError> {
        if !is_token(tag) {
            return Err(ParseError::BadHeader("tag"));
        }
        self.params.set("tag", Some(tag))
    }

    /// The `expires` parameter (Contact); values beyond 2**32-1 saturate.
    pub fn expires(&self) -> Option<u32> {
        let v = self.params.value("expires")?;
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(parse_digits(v).map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// The `q` parameter in thousandths (`q=0.5` is 500), if well-formed.
    pub fn q_millis(&self) -> Option<u16> {
        let v = self.params.value("q")?;
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole = match int {
            "0" => 0,
            "1" if frac.bytes().all(|b| b == b'0') => 1000,
            _ => return None,
        };
        let mut f = 0u16;
        for (i, b) in frac.bytes().enumerate() {
            f += u16::from(b - b'0') * [100, 10, 1][i];
        }
        Some(whole + f)
    }

    /// The `+sip.instance` parameter (RFC 5626), unquoted, e.g.
    /// `<urn:uuid:00000000-0000-1000-8000-000A95A0E128>`.
    pub fn sip_instance(&self) -> Option<Cow<'_, str>> {
        self.params.value_unquoted("+sip.instance")
    }

    /// The `reg-id` parameter (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        self.params.value("reg-id").and_then(|v| v.parse().ok())
    }

    /// Detaches from the parsed text.
    pub fn into_owned(self) -> NameAddr<'static> {
        NameAddr {
            display_name: self.display_name.map(|d| Cow::Owned(d.into_owned())),
            uri: self.uri.into_owned(),
            params: self.params.into_owned(),
        }
    }
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One Contact value: `*` or an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER with Expires: 0 removes all bindings).
    Star,
    /// An address with its contact parameters.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one Contact value.
    pub fn parse(s: &'a str) -> Result<Contact<'a>, ParseError> {
        if trim_ws(s) == "*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse(s)
            .map(Contact::Addr)
            .map_err(|_| ParseError::BadHeader("Contact"))
    }

    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }

    /// Detaches from the parsed text.
    pub fn into_owned(self) -> Contact<'static> {
        match self {
            Contact::Star => Contact::Star,
            Contact::Addr(a) => Contact::Addr(a.into_owned()),
        }
    }
}

impl fmt::Display for Contact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_str("*"),
            Contact::Addr(a) => a.fmt(f),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MediaType

/// A Content-Type / Accept value: `type/subtype;params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType<'a> {
    ty: Cow<'a, str>,
    subtype: Cow<'a, str>,
    params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses `m-type SLASH m-subtype *(SEMI m-parameter)`.
    pub fn parse(s: &'a str) -> Result<MediaType<'a>, ParseError> {
        const E: ParseError = ParseError::BadHeader("Content-Type");
        let (ty, rest) = take_token(trim_ws(s));
        let rest = trim_ws_start(rest).strip_prefix('/').ok_or(E)?;
        let (subtype, rest) = take_token(trim_ws_start(rest));
        if ty.is_empty() || subtype.is_empty() {
            return Err(E);
        }
        let params = Params::parse_header(rest).map_err(|_| E)?;
        Ok(MediaType {
            ty: Cow::Borrowed(ty),
            subtype: Cow::Borrowed(subtype),
            params,
        })
    }

    /// The type, e.g. `application`.
    pub fn ty(&self) -> &str {
        &self.ty
    }

    /// The subtype, e.g. `sdp`.
    pub fn subtype(&self) -> &str {
        &self.subtype
    }

    /// The parameters.
    pub fn params(&self) -> &Params<'a> {
        &self.params
    }

    /// Case-insensitive comparison with `ty/subtype`.
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Whether this is `application/sdp`.
    pub fn is_sdp(&self) -> bool {
        self.is("application", "sdp")
    }
}

impl fmt::Display for MediaType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.ty, self.subtype, self.params)
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization & co.

/// A credentials or challenge value (Authorization, Proxy-Authorization,
/// WWW-Authenticate, Proxy-Authenticate): a scheme and comma-separated
/// `name=value` parameters (values may be quoted). A scheme followed by a
/// single token68 (e.g. `Bearer abc=`) is kept as one parameter with an empty
/// name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthValue<'a> {
    scheme: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> AuthValue<'a> {
    /// Parses a whole header value.
    pub fn parse(s: &'a str) -> Result<AuthValue<'a>, ParseError> {
        const E: ParseError = ParseError::BadHeader("authorization");
        let s = trim_ws(s);
        let (scheme, rest) = take_token(s);
        if scheme.is_empty() || !(rest.is_empty() || rest.bytes().next().is_some_and(is_ws)) {
            return Err(E);
        }
        let rest = trim_ws(rest);
        let mut params = Vec::new();
        if rest.is_empty() {
            return Ok(AuthValue { scheme, params });
        }
        let body = rest.trim_end_matches('=');
        if !body.is_empty()
            && body.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            })
        {
            // token68, e.g. `Bearer abc==`.
            params.push(("", rest));
            return Ok(AuthValue { scheme, params });
        }
        for item in CommaSplit::new(rest) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(E);
            };
            let (name, value) = (trim_ws(name), trim_ws(value));
            if !is_token(name) {
                return Err(E);
            }
            let ok = if value.starts_with('"') {
                quoted_len(value.as_bytes()) == Some(value.len())
            } else {
                !value.is_empty() && !value.bytes().any(|b| is_ws(b) || b == b'"')
            };
            if !ok {
                return Err(E);
            }
            params.push((name, value));
        }
        Ok(AuthValue { scheme, params })
    }

    /// The scheme (`Digest`, ...).
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// The parameters as written, in order.
    pub fn params(&self) -> &[(&'a str, &'a str)] {
        &self.params
    }

    /// The value of parameter `name` (case-insensitive), unquoted.
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| unquote(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport(), "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        assert_eq!(v.to_string(), "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw");

        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.host(), &Host::Domain("spindle.example.com".into()));
        assert!(v.has_rfc3261_branch());

        let v = Via::parse(
            "SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255];rport;branch=z9hG4bKx",
        )
        .unwrap();
        assert_eq!(v.port(), Some(6050));
        assert_eq!(v.received(), "2001:db8::9:255".parse().ok());
        assert!(v.has_rport() && v.rport().is_none());
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(v.received(), "2001:db8::9:255".parse().ok());

        let mut v = Via::parse("SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport").unwrap();
        v.set_received("192.0.2.7".parse().unwrap());
        v.set_rport(50123);
        assert_eq!(
            v.to_string(),
            "SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport=50123;received=192.0.2.7"
        );

        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP",
            "SIP/2.0 UDP host",
            "SIP/2.0/UDP host:abc",
            "",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display_name_text().as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));

        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        assert_eq!(
            n.to_string(),
            "<sip:vivekg@chair-dnrc.example.com>;tag=1918181833n"
        );

        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name(), Some("caller"));

        let n =
            NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(n.display_name(), Some("token1~` token2'+_ token3*%!.-"));

        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(n.params().contains("unknownparam"));
        assert!(n.uri().as_sip().unwrap().params().is_empty());

        let n = NameAddr::parse("isbn:2983792873").unwrap();
        assert!(!n.uri().is_sip());

        let n = NameAddr::parse(
            r#"<sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=600;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1;q=0.5"#,
        )
        .unwrap();
        assert_eq!(n.expires(), Some(600));
        assert_eq!(n.reg_id(), Some(1));
        assert_eq!(n.q_millis(), Some(500));
        assert_eq!(
            n.sip_instance().as_deref(),
            Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
        );

        for bad in [
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:x@y",
            r#""Joe" <sip:joe@example.org>;;;;"#,
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
        assert!(NameAddr::parse(r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_ok());
    }

    #[test]
    fn cseq_media_auth() {
        assert_eq!(
            CSeq::parse("0009 INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
        let m = MediaType::parse("multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert_eq!(m.params().value("boundary"), Some("7a9cbec02ceef655"));
        assert!(MediaType::parse("Application/SDP").unwrap().is_sdp());
        let a = AuthValue::parse(r#"Digest username="bob", realm="b.example", nonce="a,b", uri="sip:b.example", response="0123", algorithm=MD5"#).unwrap();
        assert_eq!(a.scheme(), "Digest");
        assert_eq!(a.param("NONCE").as_deref(), Some("a,b"));
        assert_eq!(a.param("algorithm").as_deref(), Some("MD5"));
        let a = AuthValue::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert_eq!(a.param("opaque-data").as_deref(), Some("here"));
        assert_eq!(
            AuthValue::parse("Bearer abc==").unwrap().params(),
            &[("", "abc==")]
        );
        assert!(AuthValue::parse("Digest realm=\"x").is_err());
    }
}
