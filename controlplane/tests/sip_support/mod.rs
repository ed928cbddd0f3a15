//! Helpers shared by the SIP integration tests: locating the conformance
//! corpus (shared/ next to the repository, or $STRAIT_SHARED_DIR) and a
//! minimal reader for its manifest.

#![allow(dead_code)]

use std::path::PathBuf;

/// The `shared/` directory: `$STRAIT_SHARED_DIR`, else
/// `$CARGO_MANIFEST_DIR/../../shared`. Panics (fails the test) with a clear
/// message if the SIP torture corpus is not there.
pub fn shared_dir() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("STRAIT_SHARED_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        ))
        .collect();
    for c in &candidates {
        if c.join("conformance/sip-torture/manifest.json").is_file() {
            return c.clone();
        }
    }
    panic!(
        "SIP torture corpus not found: looked for conformance/sip-torture/manifest.json under {candidates:?}; \
         clone shared/ next to the repository or set STRAIT_SHARED_DIR"
    );
}

/// The corpus directory (`shared/conformance/sip-torture`).
pub fn torture_dir() -> PathBuf {
    shared_dir().join("conformance/sip-torture")
}

/// One manifest entry (the fields the tests use).
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u32,
    pub name: String,
    pub file: String,
    pub kind: String,
    pub valid: bool,
    pub data: Vec<u8>,
}

fn string_field(obj: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\": \"");
    let start = obj.find(&pat)? + pat.len();
    let mut out = String::new();
    let mut chars = obj[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            _ => out.push(c),
        }
    }
    None
}

fn raw_field<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\": ");
    let start = obj.find(&pat)? + pat.len();
    let rest = &obj[start..];
    let end = rest.find([',', '\n', '}'])?;
    Some(rest[..end].trim())
}

/// Splits the manifest (a JSON array of flat-ish objects) into top-level
/// objects, honouring strings.
fn objects(json: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for (i, c) in json.char_indices() {
        if in_str {
            match c {
                _ if esc => esc = false,
                '\\' => esc = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    out.push(&json[start..=i]);
                }
            }
            _ => {}
        }
    }
    out
}

/// All manifest entries with their bytes.
pub fn corpus() -> Vec<Entry> {
    let dir = torture_dir();
    let json = std::fs::read_to_string(dir.join("manifest.json")).expect("read manifest.json");
    let entries: Vec<Entry> = objects(&json)
        .into_iter()
        .map(|o| {
            let file = string_field(o, "file").expect("file");
            Entry {
                id: raw_field(o, "id").and_then(|v| v.parse().ok()).expect("id"),
                name: string_field(o, "name").expect("name"),
                kind: string_field(o, "kind").expect("kind"),
                valid: raw_field(o, "valid").expect("valid") == "true",
                data: std::fs::read(dir.join(&file)).expect("read message"),
                file,
            }
        })
        .collect();
    assert!(
        entries.len() >= 61,
        "manifest has {} entries",
        entries.len()
    );
    entries
}

// ------------------------------------------------------------------------------------------------
// A minimal responder core for transport tests.

use strait::sip::transport::{SipTransport, TransportEvent};
use strait::sip::{check_request, HeaderName, Message, Method, Request, Response, UasPolicy};

/// The answer of a minimal endpoint: RFC 3261 §8.2 checks (405/501 with
/// Allow, 416, 420 with Unsupported), then OPTIONS 200, BYE/CANCEL 481,
/// INVITE 480, anything else 404. ACK gets nothing.
pub fn respond(req: &Request) -> Option<Response> {
    const METHODS: &[Method] = &[
        Method::Invite,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Options,
        Method::Register,
        Method::Message,
        Method::Info,
        Method::Update,
        Method::Prack,
        Method::Subscribe,
        Method::Notify,
        Method::Refer,
        Method::Publish,
    ];
    if req.method == Method::Ack {
        return None;
    }
    let policy = UasPolicy {
        methods: METHODS,
        extensions: &["path", "outbound"],
    };
    let mut resp = check_request(req, &policy).unwrap_or_else(|| {
        let status = match req.method {
            Method::Options => 200,
            Method::Bye | Method::Cancel => 481,
            Method::Invite => 480,
            _ => 404,
        };
        let mut r = Response::from_request(req, status);
        if status == 200 {
            let allow: Vec<&str> = METHODS.iter().map(Method::as_str).collect();
            r.headers.push(HeaderName::Allow, allow.join(", "));
            r.headers.push(HeaderName::Accept, "application/sdp");
        }
        r
    });
    let tag = format!("t{}", req.headers.cseq().map(|c| c.seq).unwrap_or(0));
    let _ = resp.set_to_tag(&tag);
    Some(resp)
}

/// Runs the responder over every message event until the channel closes;
/// returns all events (for inspection).
pub async fn serve(
    transport: SipTransport,
    mut events: tokio::sync::mpsc::Receiver<TransportEvent>,
    seen: tokio::sync::mpsc::UnboundedSender<TransportEvent>,
) {
    while let Some(ev) = events.recv().await {
        if let TransportEvent::Message {
            flow,
            message: Message::Request(req),
            ..
        } = &ev
        {
            if let Some(resp) = respond(req) {
                let _ = transport.send(flow, &Message::Response(resp));
            }
        }
        let _ = seen.send(ev);
    }
}
