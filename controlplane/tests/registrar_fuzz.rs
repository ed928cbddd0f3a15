//! The registrar fuzz entry point over JsSIP-like and legacy REGISTERs and
//! mutations of them (a smoke test of the body the cargo-fuzz crate calls).
#![cfg(feature = "fuzz")]

use proptest::prelude::*;
use strait::registrar::fuzz::registrar_register;

fn msg(ctl: u8, to: &str, cseq: u32, contact: &str, extra: &str) -> Vec<u8> {
    let mut v = vec![ctl];
    v.extend_from_slice(
        format!(
            "REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\nTo: <{to}>\r\nFrom: <{to}>;tag=1\r\nCall-ID: c1\r\nCSeq: {cseq} REGISTER\r\n\
Contact: {contact}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
    v.push(0);
    v
}

fn seed() -> Vec<u8> {
    let jssip =
        "<sip:k4k6@a.invalid;transport=ws>;reg-id=1;+sip.instance=\"<urn:uuid:1>\";expires=600";
    let mut v = Vec::new();
    v.extend(msg(
        0x43,
        "sip:alice@localhost",
        1,
        jssip,
        "Supported: path, outbound\r\n",
    ));
    v.extend(msg(
        0x0b,
        "sip:alice@localhost",
        2,
        jssip,
        "Supported: path, outbound\r\n",
    ));
    v.extend(msg(
        0x40,
        "sip:bob@127.0.0.1",
        1,
        "<sip:bob@10.0.0.1>;q=0.5",
        "Expires: 60\r\n",
    ));
    v.extend(msg(
        0x20,
        "sip:bob@localhost",
        2,
        "<sip:bob@10.0.0.2>",
        "Path: <sip:e;lr;ob>\r\n",
    ));
    v.extend(msg(0x01, "sip:bob@localhost", 3, "*", "Expires: 0\r\n"));
    v.extend(msg(
        0x02,
        "sip:carol@localhost",
        1,
        "<sip:c@x>;expires=30",
        "",
    ));
    v
}

#[test]
fn seed_and_junk() {
    registrar_register(&seed());
    for junk in [&b""[..], b"\0\0\0", &[0xffu8; 64], b"\x01REGISTER"] {
        registrar_register(junk);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn mutated_seed(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..12)) {
        let mut b = seed();
        for (pos, byte) in edits {
            let p = pos % (b.len() + 1);
            if byte & 1 == 0 && p < b.len() {
                b[p] = byte;
            } else if byte & 2 == 0 && p < b.len() {
                b.remove(p);
            } else {
                b.insert(p, byte);
            }
        }
        registrar_register(&b);
    }
}
