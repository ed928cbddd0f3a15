//! Header names and the ordered header list of a message, with generic
//! access and editing plus typed accessors for the headers a proxy,
//! registrar or B2BUA needs.
//!
//! Values are stored unfolded (continuation lines joined with one space) and
//! trimmed. Header lines are kept in the order received; a line may hold
//! several comma-separated values (RFC 3261 §7.3.1) and the list accessors
//! (`vias`, `contacts`, `routes` ...) split them.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::error::ParseError;
use super::text::{is_token, parse_digits, trim_ws, CommaSplit};
use super::typed::{AuthValue, CSeq, Contact, MediaType, NameAddr, Via};

macro_rules! header_names {
    ($($var:ident = $name:literal $(| $compact:literal)? => $($lower:literal)|+,)*) => {
        /// A header name. Known names (and their compact forms, matched
        /// case-insensitively) map to a variant and are written in canonical
        /// form; any other token is kept as written in [`HeaderName::Other`].
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = concat!("`", $name, "`", $(" (compact `", $compact, "`)")?)]
                $var,
            )*
            /// An extension header, as written (compares case-insensitively).
            Other(Box<str>),
        }

        impl HeaderName {
            /// The canonical name (or the extension name as written).
            pub fn as_str(&self) -> &str {
                match self {
                    $(HeaderName::$var => $name,)*
                    HeaderName::Other(s) => s,
                }
            }

            /// The canonical name of a known header.
            pub fn as_static(&self) -> Option<&'static str> {
                match self {
                    $(HeaderName::$var => Some($name),)*
                    HeaderName::Other(_) => None,
                }
            }

            /// The compact form, if the header has one.
            pub fn compact(&self) -> Option<&'static str> {
                match self {
                    $($(HeaderName::$var => Some($compact),)?)*
                    _ => None,
                }
            }

            fn lookup(s: &str) -> Option<HeaderName> {
                // Lower-case into a small buffer (no known name is longer).
                let mut buf = [0u8; 24];
                let dst = buf.get_mut(..s.len())?;
                dst.copy_from_slice(s.as_bytes());
                dst.make_ascii_lowercase();
                match std::str::from_utf8(dst).ok()? {
                    $($($lower)|+ => Some(HeaderName::$var),)*
                    _ => None,
                }
            }
        }
    };
}

header_names! {
    Accept = "Accept" => "accept",
    AcceptContact = "Accept-Contact" | "a" => "accept-contact" | "a",
    AcceptEncoding = "Accept-Encoding" => "accept-encoding",
    AcceptLanguage = "Accept-Language" => "accept-language",
    AlertInfo = "Alert-Info" => "alert-info",
    Allow = "Allow" => "allow",
    AllowEvents = "Allow-Events" | "u" => "allow-events" | "u",
    AuthenticationInfo = "Authentication-Info" => "authentication-info",
    Authorization = "Authorization" => "authorization",
    CallId = "Call-ID" | "i" => "call-id" | "i",
    CallInfo = "Call-Info" => "call-info",
    Contact = "Contact" | "m" => "contact" | "m",
    ContentDisposition = "Content-Disposition" => "content-disposition",
    ContentEncoding = "Content-Encoding" | "e" => "content-encoding" | "e",
    ContentLanguage = "Content-Language" => "content-language",
    ContentLength = "Content-Length" | "l" => "content-length" | "l",
    ContentType = "Content-Type" | "c" => "content-type" | "c",
    CSeq = "CSeq" => "cseq",
    Date = "Date" => "date",
    ErrorInfo = "Error-Info" => "error-info",
    Event = "Event" | "o" => "event" | "o",
    Expires = "Expires" => "expires",
    From = "From" | "f" => "from" | "f",
    Identity = "Identity" | "y" => "identity" | "y",
    InReplyTo = "In-Reply-To" => "in-reply-to",
    MaxForwards = "Max-Forwards" => "max-forwards",
    MinExpires = "Min-Expires" => "min-expires",
    MinSe = "Min-SE" => "min-se",
    MimeVersion = "MIME-Version" => "mime-version",
    Organization = "Organization" => "organization",
    PAssertedIdentity = "P-Asserted-Identity" => "p-asserted-identity",
    PPreferredIdentity = "P-Preferred-Identity" => "p-preferred-identity",
    Path = "Path" => "path",
    Priority = "Priority" => "priority",
    Privacy = "Privacy" => "privacy",
    ProxyAuthenticate = "Proxy-Authenticate" => "proxy-authenticate",
    ProxyAuthorization = "Proxy-Authorization" => "proxy-authorization",
    ProxyRequire = "Proxy-Require" => "proxy-require",
    RAck = "RAck" => "rack",
    Reason = "Reason" => "reason",
    RecordRoute = "Record-Route" => "record-route",
    ReferTo = "Refer-To" | "r" => "refer-to" | "r",
    ReferredBy = "Referred-By" | "b" => "referred-by" | "b",
    RejectContact = "Reject-Contact" | "j" => "reject-contact" | "j",
    Replaces = "Replaces" => "replaces",
    ReplyTo = "Reply-To" => "reply-to",
    RequestDisposition = "Request-Disposition" | "d" => "request-disposition" | "d",
    Require = "Require" => "require",
    RetryAfter = "Retry-After" => "retry-after",
    Route = "Route" => "route",
    RSeq = "RSeq" => "rseq",
    Server = "Server" => "server",
    ServiceRoute = "Service-Route" => "service-route",
    SessionExpires = "Session-Expires" | "x" => "session-expires" | "x",
    Subject = "Subject" | "s" => "subject" | "s",
    SubscriptionState = "Subscription-State" => "subscription-state",
    Supported = "Supported" | "k" => "supported" | "k",
    Timestamp = "Timestamp" => "timestamp",
    To = "To" | "t" => "to" | "t",
    Unsupported = "Unsupported" => "unsupported",
    UserAgent = "User-Agent" => "user-agent",
    Via = "Via" | "v" => "via" | "v",
    Warning = "Warning" => "warning",
    WwwAuthenticate = "WWW-Authenticate" => "www-authenticate",
}

impl HeaderName {
    /// Parses a header name: a known name or compact form (any case), or any
    /// other token.
    pub fn new(name: &str) -> Result<HeaderName, ParseError> {
        if let Some(h) = HeaderName::lookup(name) {
            return Ok(h);
        }
        if is_token(name) {
            Ok(HeaderName::Other(name.into()))
        } else {
            Err(ParseError::BadHeaderLine)
        }
    }

    fn error_name(&self) -> &'static str {
        self.as_static().unwrap_or("extension")
    }
}

impl std::str::FromStr for HeaderName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        HeaderName::new(s)
    }
}

/// Known names compare by variant; extension names case-insensitively. (An
/// `Other` never holds a known name: [`HeaderName::new`] resolves those.)
impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (HeaderName::Other(_), _) | (_, HeaderName::Other(_)) => false,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for HeaderName {}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            HeaderName::Other(s) => {
                for b in s.bytes() {
                    state.write_u8(b.to_ascii_lowercase());
                }
            }
            known => std::mem::discriminant(known).hash(state),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that names a header for lookups: a [`HeaderName`] or a string
/// (`"Via"`, `"v"`, `"X-Foo"`; case-insensitive, compact forms resolved).
pub trait AsHeaderName {
    /// The header name (borrowed when possible).
    fn to_header_name(&self) -> Cow<'_, HeaderName>;
}

impl AsHeaderName for HeaderName {
    fn to_header_name(&self) -> Cow<'_, HeaderName> {
        Cow::Borrowed(self)
    }
}

impl AsHeaderName for &HeaderName {
    fn to_header_name(&self) -> Cow<'_, HeaderName> {
        Cow::Borrowed(*self)
    }
}

impl AsHeaderName for &str {
    fn to_header_name(&self) -> Cow<'_, HeaderName> {
        // An invalid name matches nothing: an `Other` that no parsed header
        // can equal.
        Cow::Owned(HeaderName::lookup(self).unwrap_or_else(|| HeaderName::Other((*self).into())))
    }
}

impl AsHeaderName for &String {
    fn to_header_name(&self) -> Cow<'_, HeaderName> {
        Cow::Owned(self.as_str().to_header_name().into_owned())
    }
}

/// One header line: a name and its (unfolded, trimmed) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    name: HeaderName,
    value: String,
}

/// Makes `value` safe to write on one line: CR and LF (with the whitespace
/// after them) become one space, surrounding whitespace is trimmed.
fn sanitize(value: String) -> String {
    if !value.contains(['\r', '\n']) {
        let t = trim_ws(&value);
        return if t.len() == value.len() {
            value
        } else {
            t.to_owned()
        };
    }
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    for c in value.chars() {
        match c {
            '\r' | '\n' => pending_space = true,
            ' ' | '\t' if pending_space => {}
            _ => {
                if pending_space && !out.is_empty() && !out.ends_with([' ', '\t']) {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
            }
        }
    }
    trim_ws(&out).to_owned()
}

impl Header {
    /// A header line. CR/LF in `value` are replaced by a space so that a
    /// value can never inject another header.
    pub fn new(name: HeaderName, value: impl Into<String>) -> Header {
        Header {
            name,
            value: sanitize(value.into()),
        }
    }

    pub(crate) fn new_unchecked(name: HeaderName, value: String) -> Header {
        Header { name, value }
    }

    /// The name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The ordered list of header lines of a message. Content-Length is not
/// stored: serialization computes it from the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    list: Vec<Header>,
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Headers { list: Vec::new() }
    }

    pub(crate) fn from_vec(list: Vec<Header>) -> Self {
        Headers { list }
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are no header lines.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// All header lines in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.list.iter()
    }

    /// The value of the first line called `name`.
    pub fn get(&self, name: impl AsHeaderName) -> Option<&str> {
        let key = name.to_header_name();
        self.list
            .iter()
            .find(|h| h.name == *key)
            .map(|h| h.value.as_str())
    }

    /// The values of all lines called `name`, in order (one per line; a line
    /// may hold a comma-separated list, see [`Headers::values`]).
    pub fn get_all<'a>(
        &'a self,
        name: impl AsHeaderName + 'a,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let key = name.to_header_name().into_owned();
        self.list
            .iter()
            .filter(move |h| h.name == key)
            .map(|h| h.value.as_str())
    }

    /// Every comma-separated value of every line called `name` (for list
    /// headers only: Via, Contact, Route, Supported ...; commas inside quoted
    /// strings and `<...>` do not split).
    pub fn values<'a>(
        &'a self,
        name: impl AsHeaderName + 'a,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(CommaSplit::new)
    }

    /// Number of lines called `name`.
    pub fn count(&self, name: impl AsHeaderName) -> usize {
        let key = name.to_header_name();
        self.list.iter().filter(|h| h.name == *key).count()
    }

    /// Whether a line called `name` exists.
    pub fn contains(&self, name: impl AsHeaderName) -> bool {
        self.get(name).is_some()
    }

    /// Appends a line. Content-Length is ignored (it is computed).
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        if matches!(name, HeaderName::ContentLength) {
            return;
        }
        self.list.push(Header::new(name, value));
    }

    /// Inserts a line before the first line of the same name, or at the top
    /// if there is none (what a proxy does with Via and Record-Route).
    pub fn prepend(&mut self, name: HeaderName, value: impl Into<String>) {
        if matches!(name, HeaderName::ContentLength) {
            return;
        }
        let i = self.list.iter().position(|h| h.name == name).unwrap_or(0);
        self.list.insert(i, Header::new(name, value));
    }

    /// Replaces all lines called `name` with one line (at the position of the
    /// first, or appended).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        if matches!(name, HeaderName::ContentLength) {
            return;
        }
        match self.list.iter().position(|h| h.name == name) {
            Some(i) => {
                self.list[i] = Header::new(name.clone(), value);
                let mut seen = false;
                self.list.retain(|h| {
                    if h.name != name {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes all lines called `name`; returns how many.
    pub fn remove(&mut self, name: impl AsHeaderName) -> usize {
        let key = name.to_header_name();
        let before = self.list.len();
        self.list.retain(|h| h.name != *key);
        before - self.list.len()
    }

    /// Removes the first comma-separated value of the first line called
    /// `name` (e.g. the top Via of a response), dropping the line if it held
    /// only that value. Returns the removed value.
    pub fn remove_first_value(&mut self, name: impl AsHeaderName) -> Option<String> {
        let key = name.to_header_name();
        let i = self.list.iter().position(|h| h.name == *key)?;
        let value = std::mem::take(&mut self.list[i].value);
        let mut it = CommaSplit::new(&value);
        let first = it.next().unwrap_or("").to_owned();
        let rest: Vec<&str> = it.collect();
        if rest.is_empty() {
            self.list.remove(i);
        } else {
            self.list[i].value = rest.join(", ");
        }
        Some(first)
    }

    /// Replaces the first comma-separated value of the first line called
    /// `name` (e.g. the top Via after adding `received`), or appends a line.
    pub fn set_first_value(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = sanitize(value.into());
        match self.list.iter().position(|h| h.name == name) {
            Some(i) => {
                let old = std::mem::take(&mut self.list[i].value);
                let rest: Vec<&str> = CommaSplit::new(&old).skip(1).collect();
                self.list[i].value = if rest.is_empty() {
                    value
                } else {
                    format!("{value}, {}", rest.join(", "))
                };
            }
            None => self.push(name, value),
        }
    }

    // -----------------------------------------------------------------------------------------
    // typed access

    /// The value of a header that may appear at most once.
    fn single(&self, name: HeaderName) -> Result<Option<&str>, ParseError> {
        let e = ParseError::DuplicateHeader(name.error_name());
        let mut it = self.get_all(name);
        let first = it.next();
        if it.next().is_some() {
            return Err(e);
        }
        Ok(first)
    }

    fn required(&self, name: HeaderName) -> Result<&str, ParseError> {
        let e = name.error_name();
        self.single(name)?.ok_or(ParseError::MissingHeader(e))
    }

    fn name_addrs(&self, name: HeaderName) -> Result<Vec<NameAddr<'_>>, ParseError> {
        let e = ParseError::BadHeader(name.error_name());
        self.values(name)
            .map(|v| NameAddr::parse(v).map_err(|_| e))
            .collect()
    }

    /// All Via values, top first. An empty list if there is no Via.
    pub fn vias(&self) -> Result<Vec<Via<'_>>, ParseError> {
        self.values(HeaderName::Via).map(Via::parse).collect()
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        let v = self
            .values(HeaderName::Via)
            .next()
            .ok_or(ParseError::MissingHeader("Via"))?;
        Via::parse(v)
    }

    /// Replaces the topmost Via value (e.g. after `set_received`).
    pub fn set_top_via(&mut self, via: &Via<'_>) {
        self.set_first_value(HeaderName::Via, via.to_string());
    }

    /// Adds a Via on top.
    pub fn push_via(&mut self, via: &Via<'_>) {
        self.prepend(HeaderName::Via, via.to_string());
    }

    /// The From value.
    pub fn from_addr(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.required(HeaderName::From)?).map_err(|_| ParseError::BadHeader("From"))
    }

    /// The To value.
    pub fn to_addr(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.required(HeaderName::To)?).map_err(|_| ParseError::BadHeader("To"))
    }

    /// The Call-ID (`word ["@" word]`: non-empty, no whitespace).
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let v = self.required(HeaderName::CallId)?;
        if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ParseError::BadHeader("Call-ID"));
        }
        Ok(v)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.required(HeaderName::CSeq)?)
    }

    /// Max-Forwards (0..=255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.single(HeaderName::MaxForwards)? {
            None => Ok(None),
            Some(v) => parse_digits(v)
                .and_then(|n| u8::try_from(n).ok())
                .map(Some)
                .ok_or(ParseError::BadHeader("Max-Forwards")),
        }
    }

    /// Expires in seconds, if present; values beyond 2**32-1 saturate.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        delta_seconds(self.single(HeaderName::Expires)?, "Expires")
    }

    /// Min-Expires in seconds, if present.
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        delta_seconds(self.single(HeaderName::MinExpires)?, "Min-Expires")
    }

    /// All Contact values (`*` or addresses).
    pub fn contacts(&self) -> Result<Vec<Contact<'_>>, ParseError> {
        self.values(HeaderName::Contact)
            .map(Contact::parse)
            .collect()
    }

    /// All Route values, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.name_addrs(HeaderName::Route)
    }

    /// All Record-Route values, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.name_addrs(HeaderName::RecordRoute)
    }

    /// All Path values (RFC 3327), in order.
    pub fn paths(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.name_addrs(HeaderName::Path)
    }

    /// All Service-Route values (RFC 3608), in order.
    pub fn service_routes(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.name_addrs(HeaderName::ServiceRoute)
    }

    /// The Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
        self.single(HeaderName::ContentType)?
            .map(MediaType::parse)
            .transpose()
    }

    /// The option tags (or method names) of a token-list header such as
    /// Supported, Require, Proxy-Require, Unsupported or Allow. Empty list
    /// elements are skipped.
    pub fn tokens(&self, name: HeaderName) -> Result<Vec<&str>, ParseError> {
        let e = ParseError::BadHeader(name.error_name());
        self.values(name)
            .filter(|v| !v.is_empty())
            .map(|v| if is_token(v) { Ok(v) } else { Err(e) })
            .collect()
    }

    /// Supported option tags.
    pub fn supported(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::Supported)
    }

    /// Required option tags.
    pub fn require(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::Require)
    }

    /// Whether Supported or Require lists `tag` (case-insensitive).
    pub fn has_option(&self, tag: &str) -> bool {
        [HeaderName::Supported, HeaderName::Require]
            .into_iter()
            .any(|h| self.values(&h).any(|v| v.eq_ignore_ascii_case(tag)))
    }

    /// Parsed Authorization / Proxy-Authorization / WWW-Authenticate /
    /// Proxy-Authenticate values (one per line). The raw values are available
    /// through [`Headers::get_all`].
    pub fn auth_values(&self, name: HeaderName) -> Result<Vec<AuthValue<'_>>, ParseError> {
        let e = ParseError::BadHeader(name.error_name());
        self.get_all(name)
            .map(|v| AuthValue::parse(v).map_err(|_| e))
            .collect()
    }
}

fn delta_seconds(v: Option<&str>, name: &'static str) -> Result<Option<u32>, ParseError> {
    match v {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(parse_digits(v).map_or(u32::MAX, |n| {
                u32::try_from(n).unwrap_or(u32::MAX)
            })))
        }
        Some(_) => Err(ParseError::BadHeader(name)),
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(HeaderName::new("v").unwrap(), HeaderName::Via);
        assert_eq!(HeaderName::new("cAlL-iD").unwrap(), HeaderName::CallId);
        assert_eq!(HeaderName::new("l").unwrap().as_str(), "Content-Length");
        let x = HeaderName::new("C%6Fntact").unwrap();
        assert!(matches!(x, HeaderName::Other(_)));
        assert_ne!(x, HeaderName::Contact);
        assert_eq!(
            HeaderName::new("x-foo").unwrap(),
            HeaderName::new("X-FOO").unwrap()
        );
        assert!(HeaderName::new("bad name").is_err());
        assert!(HeaderName::new("").is_err());
    }

    #[test]
    fn editing() {
        let mut h = Headers::new();
        h.push(
            HeaderName::Via,
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        );
        h.push(HeaderName::Via, "SIP/2.0/UDP c;branch=z9hG4bK3");
        h.push(HeaderName::new("X-Foo").unwrap(), "evil\r\nInjected: yes");
        h.push(HeaderName::ContentLength, "5");
        assert_eq!(h.get("x-foo"), Some("evil Injected: yes"));
        assert!(!h.contains(HeaderName::ContentLength));
        assert_eq!(h.values("v").count(), 3);

        h.prepend(HeaderName::Via, "SIP/2.0/WS p.invalid;branch=z9hG4bK0");
        assert_eq!(h.top_via().unwrap().host().to_string(), "p.invalid");
        assert_eq!(
            h.remove_first_value("Via").as_deref(),
            Some("SIP/2.0/WS p.invalid;branch=z9hG4bK0")
        );
        assert_eq!(
            h.remove_first_value("Via").as_deref(),
            Some("SIP/2.0/UDP a;branch=z9hG4bK1")
        );
        assert_eq!(h.count("Via"), 2);
        let mut top = h.top_via().unwrap().into_owned();
        top.set_received("192.0.2.1".parse().unwrap());
        h.set_top_via(&top);
        assert_eq!(h.vias().unwrap()[0].received(), "192.0.2.1".parse().ok());
        assert_eq!(h.vias().unwrap().len(), 2);

        h.push(HeaderName::Supported, "path, outbound,, gruu");
        assert_eq!(h.supported().unwrap(), vec!["path", "outbound", "gruu"]);
        assert!(h.has_option("OUTBOUND"));
        h.set(HeaderName::Supported, "timer");
        assert_eq!(h.count("k"), 1);
        assert_eq!(h.remove("X-Foo"), 1);
    }

    #[test]
    fn single_valued() {
        let mut h = Headers::new();
        h.push(HeaderName::CallId, "a@b");
        h.push(HeaderName::CallId, "c@d");
        assert_eq!(h.call_id(), Err(ParseError::DuplicateHeader("Call-ID")));
        assert_eq!(h.cseq(), Err(ParseError::MissingHeader("CSeq")));
        h.push(HeaderName::MaxForwards, "0068");
        assert_eq!(h.max_forwards(), Ok(Some(68)));
        h.set(HeaderName::MaxForwards, "300");
        assert!(h.max_forwards().is_err());
        h.push(HeaderName::Expires, "10000000000000000000000000000");
        assert_eq!(h.expires(), Ok(Some(u32::MAX)));
    }
}
