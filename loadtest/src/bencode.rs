//! A small bencode encoder and decoder for the ng protocol.
//!
//! Bencode has four types: integers (`i42e`), byte strings (`3:abc`), lists
//! (`l...e`) and dictionaries (`d...e`, keys are byte strings in sorted
//! order). The decoder takes untrusted input (the target's replies): it
//! bounds the nesting depth, checks every length against the remaining
//! input and returns [`DecodeError`] instead of panicking.

use std::collections::BTreeMap;
use std::fmt;

/// Maximum nesting depth the decoder accepts.
pub const MAX_DEPTH: usize = 32;

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A byte string (ng sends text as byte strings).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A dictionary; `BTreeMap` keeps the keys in the sorted order bencode
    /// requires.
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    /// A byte string from text.
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// A list of byte strings from text.
    pub fn str_list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::str(s)).collect())
    }

    /// A dictionary from `(key, value)` pairs.
    pub fn dict<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// The value under `key` if this is a dictionary that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    /// The text of a byte string (lossy UTF-8), if this is one.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The text under `key` of a dictionary.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Value::as_text)
    }

    /// Appends the encoding of this value to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
            }
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    out.extend_from_slice(k.len().to_string().as_bytes());
                    out.push(b':');
                    out.extend_from_slice(k);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The value as JSON (byte strings as lossy UTF-8 text), for records
    /// and failure reports.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Bytes(b) => serde_json::Value::from(String::from_utf8_lossy(b).into_owned()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Dict(d) => serde_json::Value::Object(
                d.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The encoding of this value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Why bencoded input was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start or continue a value at this position.
    Unexpected(usize),
    /// An integer or length that is not a valid number.
    BadNumber(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A dictionary key that is not a byte string.
    BadKey(usize),
    /// Bytes left after the top-level value.
    Trailing(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "bencode: truncated"),
            DecodeError::Unexpected(at) => write!(f, "bencode: unexpected byte at {at}"),
            DecodeError::BadNumber(at) => write!(f, "bencode: bad number at {at}"),
            DecodeError::TooDeep => write!(f, "bencode: nested deeper than {MAX_DEPTH}"),
            DecodeError::BadKey(at) => write!(f, "bencode: dictionary key at {at} is not a string"),
            DecodeError::Trailing(at) => write!(f, "bencode: trailing bytes at {at}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value that spans the whole input.
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::Trailing(d.pos));
    }
    Ok(v)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    /// Reads digits (with an optional leading '-') up to `end`, consuming `end`.
    fn number(&mut self, end: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let rest = self.input.get(start..).ok_or(DecodeError::Truncated)?;
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(DecodeError::Truncated)?;
        let text = &rest[..len];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(DecodeError::BadNumber(start));
        }
        let s = std::str::from_utf8(text).map_err(|_| DecodeError::BadNumber(start))?;
        let n = s.parse().map_err(|_| DecodeError::BadNumber(start))?;
        self.pos = start + len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let at = self.pos;
        let len = self.number(b':')?;
        let len = usize::try_from(len).map_err(|_| DecodeError::BadNumber(at))?;
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated)?;
        let b = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(b.to_vec())
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                Ok(Value::Int(self.number(b'e')?))
            }
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::BadKey(self.pos));
                    }
                    let k = self.bytes()?;
                    let v = self.value(depth + 1)?;
                    map.insert(k, v);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            _ => Err(DecodeError::Unexpected(self.pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_sorted_dictionaries() {
        let v = Value::dict([
            ("sdp", Value::str("v=0")),
            ("command", Value::str("offer")),
            ("flags", Value::str_list(&["a", "bc"])),
            ("n", Value::Int(-12)),
        ]);
        assert_eq!(
            v.encode(),
            b"d7:command5:offer5:flagsl1:a2:bce1:ni-12e3:sdp3:v=0e".to_vec()
        );
    }

    #[test]
    fn round_trips() {
        let v = Value::dict([
            ("result", Value::str("ok")),
            (
                "codec",
                Value::dict([
                    ("mask", Value::str_list(&["PCMU"])),
                    ("transcode", Value::str_list(&["opus"])),
                ]),
            ),
            ("empty", Value::List(vec![])),
            ("zero", Value::Int(0)),
            ("bin", Value::Bytes(vec![0, 255, b':', b'e'])),
        ]);
        assert_eq!(decode(&v.encode()), Ok(v));
    }

    #[test]
    fn converts_to_json() {
        let v = Value::dict([
            ("ICE", Value::str("force")),
            ("rtcp-mux", Value::str_list(&["offer"])),
            ("n", Value::Int(3)),
        ]);
        assert_eq!(
            v.to_json(),
            serde_json::json!({"ICE": "force", "rtcp-mux": ["offer"], "n": 3})
        );
    }

    #[test]
    fn reads_an_ng_reply() {
        let v = decode(b"d6:result2:ok3:sdp5:v=0\r\ne").unwrap();
        assert_eq!(v.text("result").as_deref(), Some("ok"));
        assert_eq!(v.text("sdp").as_deref(), Some("v=0\r\n"));
        assert_eq!(v.text("missing"), None);
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(decode(b""), Err(DecodeError::Truncated));
        assert_eq!(decode(b"i12"), Err(DecodeError::Truncated));
        assert_eq!(decode(b"ie"), Err(DecodeError::BadNumber(1)));
        assert_eq!(decode(b"i1x2e"), Err(DecodeError::BadNumber(1)));
        assert_eq!(
            decode(b"i99999999999999999999e"),
            Err(DecodeError::BadNumber(1))
        );
        assert_eq!(decode(b"5:abc"), Err(DecodeError::Truncated));
        assert_eq!(decode(b"99999999999999999:a"), Err(DecodeError::Truncated));
        assert_eq!(decode(b"-1:a"), Err(DecodeError::Unexpected(0)));
        assert_eq!(decode(b"l1:a"), Err(DecodeError::Truncated));
        assert_eq!(decode(b"di1e1:ae"), Err(DecodeError::BadKey(1)));
        assert_eq!(decode(b"i1ei2e"), Err(DecodeError::Trailing(3)));
        assert_eq!(decode(b"x"), Err(DecodeError::Unexpected(0)));
        let deep = [vec![b'l'; MAX_DEPTH + 2], vec![b'e'; MAX_DEPTH + 2]].concat();
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(decode(&ok).is_ok());
    }
}
