//! The SIP message layer against the RFC 4475 / RFC 5118 torture corpus:
//! every valid message parses and round-trips, invalid ones are rejected (or
//! accepted where the RFC allows liberal handling) with the right answer,
//! typed views see what the RFCs say they should, stream framing cuts the
//! corpus exactly, and mutated messages never panic the parser.

mod sip_support;

use std::net::IpAddr;

use strait::sip::{
    error_response, Contact, Framing, Host, Limits, Message, Method, StreamFramer, StreamItem,
    Transport, Uri,
};

fn parse(data: &[u8]) -> Message {
    Message::parse(data).unwrap_or_else(|e| panic!("parse failed: {e}"))
}

fn round_trip(m: &Message) {
    let bytes = m.to_bytes();
    let relaxed = Limits {
        max_message_size: bytes.len().max(65536),
        max_headers: 257,
    };
    let again =
        Message::parse_with(&bytes, &relaxed, Framing::Stream).expect("serialized message parses");
    assert_eq!(&again, m);
    assert_eq!(again.to_bytes(), bytes);
}

#[test]
fn every_valid_torture_message_parses_and_round_trips() {
    let corpus = sip_support::corpus();
    let mut n = 0;
    for e in corpus.iter().filter(|e| e.valid) {
        let m = Message::parse(&e.data).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        assert_eq!(m.as_request().is_some(), e.kind == "request", "{}", e.name);
        round_trip(&m);
        n += 1;
    }
    assert!(n >= 36, "only {n} valid messages");
}

/// What we do with each invalid message (as a datagram).
#[derive(Debug, PartialEq)]
enum Expect {
    /// Accepted: the RFC allows liberal parsing here.
    Accepted,
    /// Rejected and answered with this status.
    Answered(u16),
    /// Rejected and dropped (a response, or no way to route an answer).
    Dropped,
}

#[test]
fn invalid_torture_messages_are_rejected_and_answered() {
    use Expect::*;
    let table = [
        ("badinv01", Answered(400)),
        ("clerr", Answered(400)),
        ("ncl", Answered(400)),
        ("scalar02", Answered(400)),
        ("scalarlg", Dropped),
        ("quotbal", Answered(400)),
        ("ltgtruri", Answered(400)),
        ("lwsruri", Answered(400)),
        ("lwsstart", Answered(400)),
        ("trws", Answered(400)),
        ("escruri", Answered(400)),
        ("baddate", Accepted),
        ("regbadct", Accepted),
        ("badaspec", Accepted),
        ("baddn", Answered(400)),
        ("badvers", Answered(505)),
        ("mismatch01", Answered(400)),
        ("mismatch02", Answered(400)),
        ("bigcode", Dropped),
        ("insuf", Dropped),
        ("multi01", Answered(400)),
        ("mcl01", Answered(400)),
        ("ipv6-bad", Answered(400)),
    ];
    let corpus = sip_support::corpus();
    let invalid: Vec<_> = corpus.iter().filter(|e| !e.valid).collect();
    assert_eq!(invalid.len(), table.len());
    for e in invalid {
        let want = &table
            .iter()
            .find(|(n, _)| *n == e.name)
            .unwrap_or_else(|| panic!("{} not in the table", e.name))
            .1;
        let got = match Message::parse(&e.data) {
            Ok(_) => Accepted,
            Err(err) => match error_response(&e.data, err, &Limits::default()) {
                Some(r) => {
                    // The answer is itself a well-formed response.
                    // (unless the error is in a header it had to copy).
                    let bytes = r.to_bytes();
                    let copied_bad_header = ["badinv01", "scalar02", "quotbal", "baddn", "multi01"]
                        .contains(&e.name.as_str());
                    if !copied_bad_header {
                        assert!(
                            Message::parse(&bytes).is_ok(),
                            "{}: {}",
                            e.name,
                            String::from_utf8_lossy(&bytes)
                        );
                    }
                    if r.status == 400 {
                        assert!(r.reason.starts_with("Bad Request ("), "{}", r.reason);
                    }
                    Answered(r.status)
                }
                None => Dropped,
            },
        };
        assert_eq!(&got, want, "{}", e.name);
    }
}

fn message(name: &str) -> Message {
    let e = sip_support::corpus()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    parse(&e.data)
}

#[test]
fn typed_views_match_the_rfcs() {
    // 3.1.1.1: folding, compact and odd-case names, escaped quotes.
    let m = message("wsinv");
    let h = m.headers();
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    assert_eq!(h.cseq().unwrap().seq, 9);
    assert_eq!(h.to_addr().unwrap().tag(), Some("1918181833n"));
    assert_eq!(
        h.from_addr().unwrap().display_name_text().as_deref(),
        Some("J Rosenberg \\\"")
    );
    let vias = h.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport(), "UDP");
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(
        vias[2].host(),
        &Host::Ipv4("192.168.255.111".parse().unwrap())
    );
    let contacts = h.contacts().unwrap();
    let c = contacts[0].addr().unwrap();
    assert_eq!(c.params().value("newparam"), Some("newvalue"));
    assert_eq!(c.q_millis(), Some(330));
    assert_eq!(
        h.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(h.get("s"), Some(""));
    assert!(h.routes().unwrap()[0].uri().as_sip().unwrap().has_lr());
    assert_eq!(m.body().len(), 150);

    // 3.1.1.3: escapes stay escaped, and decode on demand.
    let m = message("esc01");
    let Uri::Sip(u) = &m.as_request().unwrap().uri else {
        panic!("sip uri")
    };
    assert_eq!(u.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(
        u.user_decoded().as_deref(),
        Some(b"sips:user@example.com".as_slice())
    );

    // 3.1.1.4: %00 is data; two distinct contacts.
    let m = message("escnull");
    let contacts = m.headers().contacts().unwrap();
    assert_eq!(contacts.len(), 2);
    let users: Vec<_> = contacts
        .iter()
        .map(|c| {
            c.addr()
                .unwrap()
                .uri()
                .as_sip()
                .unwrap()
                .user_decoded()
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(users, vec![b"\0".to_vec(), b"\0\0".to_vec()]);

    // 3.1.1.5: an extension method; C%6Fntact is not Contact.
    let m = message("esc02");
    assert_eq!(
        m.as_request().unwrap().method,
        Method::Extension("RE%47IST%45R".into())
    );
    assert_eq!(m.headers().contacts().unwrap().len(), 2);
    assert_eq!(
        m.headers().get("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );

    // 3.1.1.7: 34 Via values.
    assert_eq!(message("longreq").headers().vias().unwrap().len(), 34);

    // 3.1.1.11: the body is framed by Content-Length, binary and all.
    let m = message("mpart01");
    assert_eq!(m.body().len(), 553);
    assert_eq!(
        m.headers()
            .content_type()
            .unwrap()
            .unwrap()
            .params()
            .value("boundary"),
        Some("7a9cbec02ceef655")
    );

    // 3.3.x: unknown schemes are recognisable (answer 416).
    for name in ["unkscm", "novelsc"] {
        assert!(!message(name).as_request().unwrap().uri.is_sip(), "{name}");
    }
    let m = message("unksm2");
    assert!(!m.headers().to_addr().unwrap().uri().is_sip());
    assert_eq!(
        m.headers().contacts().unwrap()[0]
            .addr()
            .unwrap()
            .uri()
            .scheme(),
        "name"
    );

    // 3.1.2.x cparam01/02: contact parameter versus URI parameter.
    let m = message("cparam01");
    let c = m.headers().contacts().unwrap().remove(0);
    let Contact::Addr(a) = c else { panic!("addr") };
    assert!(a.params().contains("unknownparam"));
    assert!(a.uri().as_sip().unwrap().params().is_empty());
    let m = message("cparam02");
    let a = m.headers().contacts().unwrap().remove(0);
    assert!(a
        .addr()
        .unwrap()
        .uri()
        .as_sip()
        .unwrap()
        .params()
        .contains("unknownparam"));

    // regescrt: the escaped Route stays inside the Contact URI.
    let m = message("regescrt");
    let c = m.headers().contacts().unwrap();
    assert_eq!(
        c[0].addr().unwrap().uri().as_sip().unwrap().headers(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert!(!m.headers().contains("Route"));

    // RFC 5118.
    let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
    let m = message("ipv6-good");
    let Uri::Sip(u) = &m.as_request().unwrap().uri else {
        panic!("sip")
    };
    assert_eq!(u.host().ip(), Some(v6("2001:db8::10")));
    assert_eq!(
        m.headers().top_via().unwrap().host().ip(),
        Some(v6("2001:db8::9:1"))
    );
    let m = message("port-ambiguous");
    let Uri::Sip(u) = &m.as_request().unwrap().uri else {
        panic!("sip")
    };
    assert_eq!(
        (u.host().ip(), u.port()),
        (Some(v6("2001:db8::10:5070")), None)
    );
    let m = message("port-unambiguous");
    let Uri::Sip(u) = &m.as_request().unwrap().uri else {
        panic!("sip")
    };
    assert_eq!(
        (u.host().ip(), u.port()),
        (Some(v6("2001:db8::10")), Some(5070))
    );
    for name in [
        "via-received-param-with-delim",
        "via-received-param-no-delim",
    ] {
        let m = message(name);
        assert_eq!(
            m.headers().top_via().unwrap().received(),
            Some(v6("2001:db8::9:255")),
            "{name}"
        );
    }
    let m = message("mult-ip-in-header");
    let vias = m.headers().vias().unwrap();
    assert_eq!(vias[0].port(), Some(6050));
    assert_eq!(vias[2].received(), Some(v6("192.0.2.200")));
    assert_eq!(
        Transport::from_token(vias[2].transport()),
        Some(Transport::Tcp)
    );
    let m = message("ipv4-mapped-ipv6");
    assert_eq!(
        m.headers().top_via().unwrap().host().ip(),
        Some(v6("::ffff:192.0.2.10"))
    );
    let m = message("ipv6-bug-abnf-3-colons");
    let Uri::Sip(u) = &m.as_request().unwrap().uri else {
        panic!("sip")
    };
    assert_eq!(u.host().ip(), Some(v6("2001:db8::192.0.2.1")));
    assert_eq!(
        u.to_string(),
        "sip:user@[2001:db8:::192.0.2.1]",
        "forwarded as received"
    );
}

#[test]
fn dblreq_and_missing_content_length_by_transport() {
    // Datagram: the REGISTER, the trailing INVITE ignored.
    let e = sip_support::corpus()
        .into_iter()
        .find(|e| e.name == "dblreq")
        .unwrap();
    let m = parse(&e.data);
    assert_eq!(m.as_request().unwrap().method, Method::Register);
    assert!(m.body().is_empty());
    // Stream: two requests.
    let mut f = StreamFramer::new(Limits::default());
    f.push(&e.data).unwrap();
    let mut methods = Vec::new();
    // The INVITE's body is longer than its Content-Length: what follows it
    // cannot be framed, which ends the stream.
    while let Ok(Some(item)) = f.next_item() {
        if let StreamItem::Message(b) = item {
            let m = Message::parse_with(&b, &Limits::default(), Framing::Stream).unwrap();
            methods.push(m.as_request().unwrap().method.clone());
        }
    }
    assert_eq!(methods, vec![Method::Register, Method::Invite]);

    // inv2543 has no Content-Length: fine in a datagram, unframable on a stream.
    let e = sip_support::corpus()
        .into_iter()
        .find(|e| e.name == "inv2543")
        .unwrap();
    assert_eq!(
        parse(&e.data).body().len(),
        e.data.len() - e.data.windows(4).position(|w| w == b"\r\n\r\n").unwrap() - 4
    );
    let mut f = StreamFramer::new(Limits::default());
    f.push(&e.data).unwrap();
    assert_eq!(
        f.next_item(),
        Err(strait::sip::ParseError::MissingContentLength)
    );
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn stream_framer_reassembles_the_corpus_in_any_split() {
    let msgs: Vec<Message> = sip_support::corpus()
        .iter()
        .filter_map(|e| Message::parse(&e.data).ok())
        .collect();
    let mut stream = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if i % 3 == 0 {
            stream.extend_from_slice(b"\r\n\r\n");
        }
        m.write_to(&mut stream);
    }
    let pings = msgs.len().div_ceil(3);
    let mut rng = Rng(0x5eed);
    for split in 0..20 {
        let mut f = StreamFramer::new(Limits::default());
        let (mut got, mut got_pings) = (Vec::new(), 0);
        let mut rest = stream.as_slice();
        while !rest.is_empty() {
            let n = if split == 0 { 1 } else { 1 + rng.below(3000) }.min(rest.len());
            f.push(&rest[..n]).unwrap();
            rest = &rest[n..];
            while let Some(item) = f.next_item().unwrap() {
                match item {
                    StreamItem::Ping => got_pings += 1,
                    StreamItem::Message(b) => got.push(
                        Message::parse_with(&b, &Limits::default(), Framing::Stream).unwrap(),
                    ),
                }
            }
        }
        assert_eq!(got, msgs, "split {split}");
        assert_eq!(got_pings, pings);
        assert!(!f.is_partial());
    }
}

#[test]
fn mutated_messages_never_panic_and_accepted_ones_round_trip() {
    let corpus = sip_support::corpus();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let specials: &[&[u8]] = &[
        b"\r\n",
        b"\r\n ",
        b" ",
        b";",
        b",",
        b"\"",
        b"<",
        b">",
        b":",
        b"@",
        b"%",
        b"[",
        b"]",
        b"\0",
        b"\xff",
        b"\r",
        b"\n",
        b"=",
        b"/",
        b"Content-Length: 1\r\n",
        b"l: 99999999999999999999\r\n",
        b"Via: x\r\n",
    ];
    let mut accepted = 0;
    for e in &corpus {
        for _ in 0..150 {
            let mut d = e.data.clone();
            for _ in 0..1 + rng.below(4) {
                let pos = rng.below(d.len() + 1);
                match rng.below(5) {
                    0 if pos < d.len() => d[pos] = rng.next() as u8,
                    1 => {
                        let s = specials[rng.below(specials.len())];
                        d.splice(pos..pos, s.iter().copied());
                    }
                    2 if pos < d.len() => {
                        let end = (pos + rng.below(20)).min(d.len());
                        d.drain(pos..end);
                    }
                    3 => d.truncate(pos),
                    _ => {
                        let end = (pos + rng.below(40)).min(d.len());
                        let chunk = d[pos..end].to_vec();
                        d.splice(pos..pos, chunk);
                    }
                }
            }
            match Message::parse(&d) {
                Ok(m) => {
                    accepted += 1;
                    round_trip(&m);
                    let h = m.headers();
                    for v in h.vias().unwrap() {
                        assert_eq!(strait::sip::Via::parse(&v.to_string()).unwrap(), v);
                    }
                    let _ = (h.contacts(), h.routes(), h.content_type(), h.expires());
                }
                Err(err) => {
                    let _ = error_response(&d, err, &Limits::default());
                }
            }
            let mut f = StreamFramer::new(Limits::default());
            if f.push(&d).is_ok() {
                while let Ok(Some(_)) = f.next_item() {}
            }
            #[cfg(feature = "fuzz")]
            {
                strait::sip::fuzz::sip_parse(&d);
                strait::sip::fuzz::sip_stream(&d);
            }
        }
    }
    assert!(
        accepted > 500,
        "only {accepted} mutants accepted; the test is not exercising round trips"
    );
}
