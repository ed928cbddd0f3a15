//! Lexical helpers shared by the SIP parsers (RFC 3261 §25.1 character
//! classes, quoted strings, top-level comma splitting, percent-decoding).

use std::borrow::Cow;

/// `token` characters (RFC 3261 §25.1): alphanum / "-" / "." / "!" / "%" /
/// "*" / "_" / "+" / "`" / "'" / "~".
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// SP or HTAB.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims SP/HTAB on both sides.
pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Trims SP/HTAB on the left.
pub(crate) fn trim_ws_start(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Length in bytes of the quoted string at the start of `s` (which must start
/// with `"`), both quotes included. `None` if it is not terminated or contains
/// CR or LF.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F); we also
                // accept a UTF-8 lead byte after the backslash.
                match s.get(i + 1) {
                    None | Some(b'\r') | Some(b'\n') => return None,
                    Some(_) => i += 2,
                }
            }
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// The text of a quoted string: quotes removed and quoted-pairs resolved.
/// Input that is not a quoted string is returned unchanged.
pub(crate) fn unquote(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'"' || b[b.len() - 1] != b'"' {
        return Cow::Borrowed(s);
    }
    let inner = &s[1..s.len() - 1];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as a quoted string, escaping `"` and `\` (CR and LF become spaces).
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits a header value at commas that are outside quoted strings and
/// angle brackets (RFC 3261 §7.3.1). Items are trimmed; an empty value yields
/// no item, but empty items between commas are yielded (so the typed parsers
/// can reject them).
#[derive(Debug, Clone)]
pub(crate) struct CommaSplit<'a> {
    rest: Option<&'a str>,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(value: &'a str) -> Self {
        let v = trim_ws(value);
        CommaSplit {
            rest: if v.is_empty() { None } else { Some(v) },
        }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let b = s.as_bytes();
        let mut i = 0;
        let mut angle = false;
        while i < b.len() {
            match b[i] {
                b'"' => match quoted_len(&b[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    // Unterminated: the rest is one item; its parser rejects it.
                    None => break,
                },
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(trim_ws(&s[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(trim_ws(s))
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Resolves `%HH` escapes. Malformed escapes are kept literally. The result may
/// contain any byte (`%00` included), hence bytes rather than a string.
pub(crate) fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// Parses a run of decimal digits (leading zeros allowed) into a `u64`,
/// `None` on anything else or on overflow.
pub(crate) fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_len(br#""J Rosenberg \\\"" <x>"#), Some(18));
        assert_eq!(quoted_len(br#""unterminated"#), None);
        assert_eq!(quoted_len(b"\"a\r\nb\""), None);
        assert_eq!(unquote(r#""J Rosenberg \\\"""#), r#"J Rosenberg \""#);
        assert_eq!(unquote(&quote(r#"a "b" \c"#)), r#"a "b" \c"#);
    }

    #[test]
    fn comma_split_respects_quotes_and_brackets() {
        let v: Vec<_> =
            CommaSplit::new(r#""a,b" <sip:x@y;p=1,2>, <sip:z> ;q="1,2" , last"#).collect();
        assert_eq!(
            v,
            vec![r#""a,b" <sip:x@y;p=1,2>"#, r#"<sip:z> ;q="1,2""#, "last"]
        );
        assert_eq!(CommaSplit::new("  ").count(), 0);
        assert_eq!(
            CommaSplit::new("a,,b,").collect::<Vec<_>>(),
            vec!["a", "", "b", ""]
        );
    }

    #[test]
    fn percent() {
        assert_eq!(&*percent_decode("null-%00-x%4"), b"null-\0-x%4");
        assert_eq!(parse_digits("0068"), Some(68));
        assert_eq!(parse_digits("36893488147419103232"), None);
        assert_eq!(parse_digits("-1"), None);
    }
}
