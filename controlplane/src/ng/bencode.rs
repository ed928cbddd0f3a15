//! Bencode, as the ng protocol uses it: dictionaries, lists, integers and
//! byte strings.
//!
//! Decoding borrows: byte strings and dictionary keys are slices of the
//! input ([`Value<&[u8]>`](Value)), nothing is copied. The decoder never
//! panics and never recurses deeper, allocates more elements or reads more
//! bytes than its [`Limits`] allow; every failure is a typed
//! [`DecodeError`]. Integers and string lengths must be canonical (no
//! leading zeros, no `-0`). Dictionary keys need not be sorted (rtpengine
//! and its clients do not sort them either); duplicate keys are kept, and
//! [`Value::get`] returns the first.
//!
//! The encoder writes any [`Value`] whose byte strings are `AsRef<[u8]>`;
//! replies are built as [`Value<Vec<u8>>`](Value) ([`Owned`]). Dictionaries
//! are written in insertion order, so `encode(decode(x)) == x` for every
//! accepted `x`.

use std::fmt;

/// A bencoded value whose byte strings are `S` (`&[u8]` when decoded,
/// `Vec<u8>` when built for encoding).
#[derive(Clone, PartialEq, Eq)]
pub enum Value<S> {
    /// `i<n>e`.
    Int(i64),
    /// `<len>:<bytes>`.
    Bytes(S),
    /// `l...e`.
    List(Vec<Value<S>>),
    /// `d...e`: key/value pairs in wire (or insertion) order.
    Dict(Vec<(S, Value<S>)>),
}

/// A decoded value borrowing from the input.
pub type Borrowed<'a> = Value<&'a [u8]>;
/// An owned value, built for encoding.
pub type Owned = Value<Vec<u8>>;

impl<S: AsRef<[u8]>> fmt::Debug for Value<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => write!(f, "{:?}", String::from_utf8_lossy(b.as_ref())),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => f
                .debug_map()
                .entries(
                    d.iter()
                        .map(|(k, v)| (String::from_utf8_lossy(k.as_ref()), v)),
                )
                .finish(),
        }
    }
}

impl<S: AsRef<[u8]>> Value<S> {
    /// The value of the first entry named `key`, if this is a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value<S>> {
        match self {
            Value::Dict(d) => d
                .iter()
                .find(|(k, _)| k.as_ref() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b.as_ref()),
            _ => None,
        }
    }

    /// The bytes as UTF-8, if this is a byte string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The integer, if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<S>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The entries, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(S, Value<S>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The encoded form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Appends the encoded form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b.as_ref(), out),
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    encode_bytes(k.as_ref(), out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

impl<'a> Borrowed<'a> {
    /// The bytes, borrowed from the decoded input, if this is a byte string.
    pub fn slice(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The bytes as UTF-8, borrowed from the decoded input, if this is a byte
    /// string that is valid UTF-8.
    pub fn text(&self) -> Option<&'a str> {
        self.slice().and_then(|b| std::str::from_utf8(b).ok())
    }
}

impl Borrowed<'_> {
    /// A copy that owns its bytes.
    pub fn to_owned_value(&self) -> Owned {
        match self {
            Value::Int(i) => Value::Int(*i),
            Value::Bytes(b) => Value::Bytes(b.to_vec()),
            Value::List(l) => Value::List(l.iter().map(Borrowed::to_owned_value).collect()),
            Value::Dict(d) => Value::Dict(
                d.iter()
                    .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
                    .collect(),
            ),
        }
    }
}

impl Owned {
    /// A byte string from text.
    pub fn str(s: impl Into<String>) -> Owned {
        Value::Bytes(s.into().into_bytes())
    }

    /// An empty dictionary.
    pub fn dict() -> Owned {
        Value::Dict(Vec::new())
    }

    /// An empty list.
    pub fn list() -> Owned {
        Value::List(Vec::new())
    }

    /// Appends `key: value` if this is a dictionary (does nothing otherwise).
    pub fn insert(&mut self, key: &str, value: Owned) {
        if let Value::Dict(d) = self {
            d.push((key.as_bytes().to_vec(), value));
        }
    }

    /// Appends `value` if this is a list (does nothing otherwise).
    pub fn push(&mut self, value: Owned) {
        if let Value::List(l) = self {
            l.push(value);
        }
    }

    /// Builder form of [`Owned::insert`].
    pub fn with(mut self, key: &str, value: Owned) -> Owned {
        self.insert(key, value);
        self
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Decoder limits. Inputs beyond them are refused, never truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one document may span.
    pub max_size: usize,
    /// Deepest nesting of lists and dictionaries (the top level counts 1).
    pub max_depth: usize,
    /// Most values (of any kind, dictionary keys excluded) in one document.
    pub max_elements: usize,
}

impl Default for Limits {
    /// 1 MiB, depth 16, 10,000 values: well above what Kamailio or
    /// OpenSIPS send (a WebRTC offer is a dozen keys and a few KiB of SDP).
    fn default() -> Self {
        Limits {
            max_size: 1 << 20,
            max_depth: 16,
            max_elements: 10_000,
        }
    }
}

/// Why a document was refused. `offset` is where in the input the problem
/// was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value (on a stream: wait for more bytes).
    UnexpectedEnd,
    /// The document is longer than [`Limits::max_size`].
    TooLarge,
    /// Nesting deeper than [`Limits::max_depth`].
    TooDeep {
        /// Where.
        offset: usize,
    },
    /// More values than [`Limits::max_elements`].
    TooManyElements {
        /// Where.
        offset: usize,
    },
    /// A byte that cannot start (or continue) a value here.
    UnexpectedByte {
        /// Where.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// An integer that is empty, not canonical or out of `i64` range.
    InvalidInteger {
        /// Where.
        offset: usize,
    },
    /// A string length that is not canonical or out of range.
    InvalidLength {
        /// Where.
        offset: usize,
    },
    /// A dictionary key that is not a byte string.
    KeyNotString {
        /// Where.
        offset: usize,
    },
    /// Bytes after the complete document.
    TrailingBytes {
        /// Where.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd => write!(f, "unexpected end of input"),
            DecodeError::TooLarge => write!(f, "document too large"),
            DecodeError::TooDeep { offset } => write!(f, "nested too deep at byte {offset}"),
            DecodeError::TooManyElements { offset } => {
                write!(f, "too many elements at byte {offset}")
            }
            DecodeError::UnexpectedByte { offset, byte } => {
                write!(f, "unexpected byte 0x{byte:02x} at byte {offset}")
            }
            DecodeError::InvalidInteger { offset } => write!(f, "invalid integer at byte {offset}"),
            DecodeError::InvalidLength { offset } => {
                write!(f, "invalid string length at byte {offset}")
            }
            DecodeError::KeyNotString { offset } => {
                write!(f, "dictionary key is not a string at byte {offset}")
            }
            DecodeError::TrailingBytes { offset } => write!(f, "trailing bytes at byte {offset}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one document spanning all of `data`.
pub fn decode<'a>(data: &'a [u8], limits: &Limits) -> Result<Borrowed<'a>, DecodeError> {
    if data.len() > limits.max_size {
        return Err(DecodeError::TooLarge);
    }
    let (v, used) = decode_prefix(data, limits)?;
    if used != data.len() {
        return Err(DecodeError::TrailingBytes { offset: used });
    }
    Ok(v)
}

/// Decodes the document at the start of `data`, returning it and how many
/// bytes it spans; what follows is left alone. [`DecodeError::UnexpectedEnd`]
/// means the input stops inside the document (more may follow on a stream);
/// [`DecodeError::TooLarge`] that it would exceed [`Limits::max_size`].
pub fn decode_prefix<'a>(
    data: &'a [u8],
    limits: &Limits,
) -> Result<(Borrowed<'a>, usize), DecodeError> {
    let window = &data[..data.len().min(limits.max_size)];
    let mut d = Decoder {
        data: window,
        pos: 0,
        elements: 0,
        limits,
    };
    match d.value(1) {
        Ok(v) => Ok((v, d.pos)),
        // Cut short by the size window, not by the input: too large.
        Err(DecodeError::UnexpectedEnd) if window.len() < data.len() => Err(DecodeError::TooLarge),
        Err(e) => Err(e),
    }
}

struct Decoder<'a, 'l> {
    data: &'a [u8],
    pos: usize,
    elements: usize,
    limits: &'l Limits,
}

impl<'a> Decoder<'a, '_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::UnexpectedEnd)
    }

    fn value(&mut self, depth: usize) -> Result<Borrowed<'a>, DecodeError> {
        let start = self.pos;
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(DecodeError::TooManyElements { offset: start });
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                Ok(Value::Int(self.int()?))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' => {
                if depth > self.limits.max_depth {
                    return Err(DecodeError::TooDeep { offset: start });
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth > self.limits.max_depth {
                    return Err(DecodeError::TooDeep { offset: start });
                }
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    let b = self.peek()?;
                    if b == b'e' {
                        break;
                    }
                    if !b.is_ascii_digit() {
                        return Err(DecodeError::KeyNotString { offset: self.pos });
                    }
                    let key = self.bytes()?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            byte => Err(DecodeError::UnexpectedByte {
                offset: start,
                byte,
            }),
        }
    }

    /// After the `i`: an optional `-`, digits, `e`.
    fn int(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        let invalid = DecodeError::InvalidInteger { offset: start };
        let mut end = start;
        while let Some(&b) = self.data.get(end) {
            if !(b.is_ascii_digit() || (end == start && b == b'-')) {
                break;
            }
            end += 1;
            // "-9223372036854775808" is the longest valid form.
            if end - start > 20 {
                return Err(invalid);
            }
        }
        match self.data.get(end) {
            None => return Err(DecodeError::UnexpectedEnd),
            Some(b'e') => {}
            Some(_) => return Err(invalid),
        }
        let text = &self.data[start..end];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let canonical = match digits {
            [] => false,
            [b'0'] => text.len() == 1,
            [first, ..] => *first != b'0',
        };
        if !canonical {
            return Err(invalid);
        }
        let n = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(invalid)?;
        self.pos = end + 1;
        Ok(n)
    }

    /// `<len>:<bytes>`.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let mut len: usize = 0;
        let mut digits = 0;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    if digits == 1 && len == 0 {
                        return Err(DecodeError::InvalidLength { offset: start });
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(b - b'0')))
                        .ok_or(DecodeError::InvalidLength { offset: start })?;
                    digits += 1;
                    self.pos += 1;
                }
                b':' if digits > 0 => {
                    self.pos += 1;
                    break;
                }
                byte => {
                    return Err(DecodeError::UnexpectedByte {
                        offset: self.pos,
                        byte,
                    })
                }
            }
        }
        if len > self.limits.max_size {
            return Err(DecodeError::TooLarge);
        }
        let end = self
            .pos
            .checked_add(len)
            .ok_or(DecodeError::InvalidLength { offset: start })?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(DecodeError::UnexpectedEnd)?;
        self.pos = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Borrowed<'_>, DecodeError> {
        decode(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn decodes_the_four_kinds_and_round_trips() {
        let wire = "d7:command5:offer3:sdpl1:ai-42ei0ee5:emptyd0:0:e3:inti1234567890123ee";
        let v = dec(wire).unwrap();
        assert_eq!(v.get("command").and_then(Value::as_str), Some("offer"));
        let l = v.get("sdp").and_then(Value::as_list).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].as_int(), Some(-42));
        assert_eq!(l[2].as_int(), Some(0));
        assert_eq!(
            v.get("empty")
                .and_then(|e| e.get(""))
                .and_then(Value::as_str),
            Some("")
        );
        assert_eq!(
            v.get("int").and_then(Value::as_int),
            Some(1_234_567_890_123)
        );
        assert_eq!(v.to_bytes(), wire.as_bytes());
        assert_eq!(v.to_owned_value().to_bytes(), wire.as_bytes());
        assert!(v.get("missing").is_none());
    }

    #[test]
    fn builds_replies() {
        let r = Owned::dict()
            .with("result", Owned::str("ok"))
            .with("calls", Value::List(vec![Owned::str("a"), Owned::str("b")]))
            .with("created", Value::Int(1_700_000_000));
        assert_eq!(
            r.to_bytes(),
            b"d6:result2:ok5:callsl1:a1:be7:createdi1700000000ee"
        );
    }

    #[test]
    fn extreme_integers() {
        assert_eq!(
            dec("i9223372036854775807e").unwrap().as_int(),
            Some(i64::MAX)
        );
        assert_eq!(
            dec("i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        assert!(matches!(
            dec("i9223372036854775808e"),
            Err(DecodeError::InvalidInteger { .. })
        ));
        let big = Value::<Vec<u8>>::Int(i64::MIN);
        assert_eq!(
            decode(&big.to_bytes(), &Limits::default())
                .unwrap()
                .as_int(),
            Some(i64::MIN)
        );
    }

    #[test]
    fn rejects_malformed_input() {
        let cases: &[(&str, DecodeError)] = &[
            ("", DecodeError::UnexpectedEnd),
            ("d", DecodeError::UnexpectedEnd),
            ("d3:abc", DecodeError::UnexpectedEnd),
            ("5:abc", DecodeError::UnexpectedEnd),
            ("i12", DecodeError::UnexpectedEnd),
            ("l", DecodeError::UnexpectedEnd),
            (
                "x",
                DecodeError::UnexpectedByte {
                    offset: 0,
                    byte: b'x',
                },
            ),
            ("ie", DecodeError::InvalidInteger { offset: 1 }),
            ("i-e", DecodeError::InvalidInteger { offset: 1 }),
            ("i-0e", DecodeError::InvalidInteger { offset: 1 }),
            ("i03e", DecodeError::InvalidInteger { offset: 1 }),
            ("i1x2e", DecodeError::InvalidInteger { offset: 1 }),
            ("i1x", DecodeError::InvalidInteger { offset: 1 }),
            ("03:abc", DecodeError::InvalidLength { offset: 0 }),
            (
                "3x",
                DecodeError::UnexpectedByte {
                    offset: 1,
                    byte: b'x',
                },
            ),
            (
                "99999999999999999999999:a",
                DecodeError::InvalidLength { offset: 0 },
            ),
            ("di1ei2ee", DecodeError::KeyNotString { offset: 1 }),
            (
                "d1:ae",
                DecodeError::UnexpectedByte {
                    offset: 4,
                    byte: b'e',
                },
            ),
            ("i1ei2e", DecodeError::TrailingBytes { offset: 3 }),
            ("de ", DecodeError::TrailingBytes { offset: 2 }),
        ];
        for (input, want) in cases {
            assert_eq!(dec(input).unwrap_err(), *want, "{input:?}");
        }
    }

    #[test]
    fn enforces_depth_elements_and_size() {
        let limits = Limits {
            max_size: 64,
            max_depth: 3,
            max_elements: 5,
        };
        assert!(decode(b"llleee", &limits).is_ok());
        assert_eq!(
            decode(b"lllleeee", &limits),
            Err(DecodeError::TooDeep { offset: 3 })
        );
        assert!(decode(b"li1ei2ei3ei4ee", &limits).is_ok());
        assert_eq!(
            decode(b"li1ei2ei3ei4ei5ee", &limits),
            Err(DecodeError::TooManyElements { offset: 13 })
        );
        let long = format!("{}:{}", 65, "a".repeat(65));
        assert_eq!(decode(long.as_bytes(), &limits), Err(DecodeError::TooLarge));
        // A claimed length past the limit is refused before reading on.
        assert_eq!(decode(b"100:a", &limits), Err(DecodeError::TooLarge));
        // Deep nesting far beyond any limit fails fast and without recursion
        // past the limit.
        let deep = "l".repeat(100_000);
        assert!(matches!(
            decode(deep.as_bytes(), &Limits::default()),
            Err(DecodeError::TooDeep { .. })
        ));
    }

    #[test]
    fn prefix_decoding_reports_length_and_incomplete() {
        let limits = Limits::default();
        let (v, n) = decode_prefix(b"d1:ai1ee trailing", &limits).unwrap();
        assert_eq!((v.get("a").and_then(Value::as_int), n), (Some(1), 8));
        assert_eq!(
            decode_prefix(b"d1:ai1", &limits),
            Err(DecodeError::UnexpectedEnd)
        );
        let small = Limits {
            max_size: 4,
            ..limits
        };
        assert_eq!(
            decode_prefix(b"d1:ai1ee", &small),
            Err(DecodeError::TooLarge)
        );
    }
}
