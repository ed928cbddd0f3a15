//! SDP parser, writer and typed views: real peers' descriptions, canonical
//! output, tolerance, strict errors, and round-trip properties.

mod sdp_fixtures;

use proptest::prelude::*;
use sdp_fixtures::*;
use std::net::SocketAddr;
use strait::sdp::{
    find_audio, Attribute, Bandwidth, Candidate, CodecKind, Connection, Crypto, Direction,
    Fingerprint, HashAlgorithm, IceCredentials, MediaDescription, MediaInfo, Origin, Profile,
    SdpError, SessionDescription, Setup, SrtpSuite, Timing,
};

fn parse(s: &str) -> SessionDescription {
    SessionDescription::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

fn audio(s: &str) -> MediaInfo {
    let sd = parse(s);
    let i = find_audio(&sd, None).unwrap();
    MediaInfo::from_session(&sd, i).unwrap()
}

fn err(s: &str) -> SdpError {
    SessionDescription::parse(s.as_bytes()).unwrap_err()
}

const ALL: [&str; 10] = [
    CHROME_OFFER,
    CHROME_OFFER_MDNS,
    CHROME_OFFER_VIDEO,
    CHROME_OFFER_OPUS_ONLY,
    CHROME_ANSWER,
    SIPP_OFFER,
    ASTERISK_OFFER,
    PHONE_OFFER_LF,
    G729_OFFER,
    SDES_OFFER,
];

#[test]
fn every_fixture_parses_and_round_trips() {
    for f in ALL {
        let sd = parse(f);
        let w1 = sd.to_string();
        let sd2 = parse(&w1);
        assert_eq!(sd, sd2, "parse(write(x)) == x");
        assert_eq!(w1, sd2.to_string());
        // CRLF-terminated input is reproduced byte for byte (the fixtures are canonical).
        if f.contains("\r\n") {
            assert_eq!(w1, f);
        } else {
            assert_eq!(w1, f.replace('\n', "\r\n"));
        }
    }
}

#[test]
fn unknown_attributes_are_kept_verbatim() {
    let sd = parse(CHROME_OFFER);
    assert_eq!(
        sd.attr("msid-semantic"),
        Some(" WMS 5b7c4c4f-3a7e-4b8e-9f39-1d7e1f1d2c3a")
    );
    assert!(sd.has_attr("extmap-allow-mixed"));
    let m = &sd.media[0];
    assert_eq!(m.attrs("extmap").count(), 4);
    assert_eq!(
        m.attrs("extmap").nth(2),
        Some("3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01")
    );
    let text = sd.to_string();
    assert!(text.contains("\r\na=msid-semantic: WMS 5b7c4c4f-3a7e-4b8e-9f39-1d7e1f1d2c3a\r\n"));
}

#[test]
fn writer_emits_rfc_order_whatever_the_input_order() {
    // Session lines shuffled, media lines shuffled, LF endings, blank lines,
    // trailing spaces, runs of spaces.
    let input = "v=0\n\
        a=tool:x\n\
        t=0 0\n\
        s=session\n\
        b=AS:64\n\
        c=IN IP4 192.0.2.1   \n\
        o=-  1   2 IN IP4 192.0.2.1\n\
        \n\
        m=audio   5004 RTP/AVP 0  8\n\
        a=sendrecv\n\
        b=AS:80\n\
        c=IN IP4 192.0.2.2\n\
        i=voice\n\n\n";
    let sd = parse(input);
    let expected = "v=0\r\n\
        o=- 1 2 IN IP4 192.0.2.1\r\n\
        s=session\r\n\
        c=IN IP4 192.0.2.1\r\n\
        b=AS:64\r\n\
        t=0 0\r\n\
        a=tool:x\r\n\
        m=audio 5004 RTP/AVP 0 8\r\n\
        i=voice\r\n\
        c=IN IP4 192.0.2.2\r\n\
        b=AS:80\r\n\
        a=sendrecv\r\n";
    assert_eq!(sd.to_string(), expected);
}

#[test]
fn tolerated_sloppiness() {
    // No t= line, empty s= line: accepted, written canonically.
    let sd = parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\n",
    );
    assert!(sd.times.is_empty());
    let out = sd.to_string();
    assert!(out.contains("\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio"));
    // And the canonical form is a fixpoint.
    assert_eq!(parse(&out).to_string(), out);
    // r=, z=, k=, u=, e=, p= lines are kept in their places.
    let full = "v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\ns=SDP Seminar\r\n\
        i=A Seminar\r\nu=http://www.example.com/seminars/sdp.pdf\r\ne=j.doe@example.com (Jane Doe)\r\n\
        p=+1 617 555-6011\r\nc=IN IP4 224.2.17.12/127\r\nt=2873397496 2873404696\r\nr=7d 1h 0 25h\r\n\
        z=2882844526 -1h 2898848070 0\r\nk=clear:x\r\na=recvonly\r\nm=audio 49170 RTP/AVP 0\r\n\
        m=video 51372 RTP/AVP 99\r\na=rtpmap:99 h263-1998/90000\r\n";
    let sd = parse(full);
    assert_eq!(sd.to_string(), full);
    assert_eq!(sd.times[0].repeats, vec!["7d 1h 0 25h".to_owned()]);
    // Multicast c= with TTL: the address is still usable.
    let m = MediaInfo::from_session(&sd, 0).unwrap();
    assert_eq!(m.rtp, Some("224.2.17.12:49170".parse().unwrap()));
    assert_eq!(
        m.direction,
        Direction::RecvOnly,
        "session-level direction applies"
    );
}

#[test]
fn malformed_input_gives_clear_errors() {
    let ok_head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
    let cases: Vec<(String, SdpError)> = vec![
        ("".into(), SdpError::Empty),
        ("\r\n\r\n".into(), SdpError::Empty),
        (
            "o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n".into(),
            SdpError::Malformed {
                line: 1,
                reason: "the first line must be v=",
            },
        ),
        (
            "v=1\r\n".into(),
            SdpError::Malformed {
                line: 1,
                reason: "unsupported SDP version",
            },
        ),
        ("v=0\r\ns=-\r\n".into(), SdpError::MissingLine("o=")),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n".into(),
            SdpError::MissingLine("s="),
        ),
        (
            "v=0\r\no=- 1 IN IP4 1.2.3.4\r\ns=-\r\n".into(),
            SdpError::Malformed {
                line: 2,
                reason: "o= needs six fields",
            },
        ),
        (
            format!("{ok_head}x=unknown\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "unknown line type",
            },
        ),
        (
            format!("{ok_head}m=audio 70000 RTP/AVP 0\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "m= port out of range",
            },
        ),
        (
            format!("{ok_head}m=audio 5004 RTP/AVP 128\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "m= payload type is not 0..127",
            },
        ),
        (
            format!("{ok_head}m=audio 5004 RTP/AVP PCMU\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "m= payload type is not 0..127",
            },
        ),
        (
            format!("{ok_head}m=audio 5004\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "m= needs <media> <port> <proto> <fmt>...",
            },
        ),
        (
            format!("{ok_head}c=IN IP4 1.2.3.4\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "duplicate c= line",
            },
        ),
        (
            format!("{ok_head}m=audio 5004 RTP/AVP 0\r\nt=0 0\r\n"),
            SdpError::Malformed {
                line: 7,
                reason: "line type not allowed in a media section",
            },
        ),
        (
            format!("{ok_head}a=\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "attribute name is not a token",
            },
        ),
        (
            format!("{ok_head}a=bad name:1\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "attribute name is not a token",
            },
        ),
        (
            format!("{ok_head}a=x\ry\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "stray CR or NUL",
            },
        ),
        (
            format!("{ok_head}a=x\0\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "stray CR or NUL",
            },
        ),
        (
            format!("{ok_head} a=x\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "not a <type>=<value> line",
            },
        ),
        (
            format!("{ok_head}b=AS\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "b= needs <type>:<value>",
            },
        ),
        (
            format!("{ok_head}t=now later\r\n"),
            SdpError::Malformed {
                line: 6,
                reason: "t= times must be decimal",
            },
        ),
        (
            "v=0\r\nr=1\r\n".into(),
            SdpError::Malformed {
                line: 2,
                reason: "r= without t=",
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(err(&input), want, "input {input:?}");
    }
    assert_eq!(
        SessionDescription::parse(b"v=0\r\ns=\xff\r\n"),
        Err(SdpError::NotUtf8)
    );
    let big = format!(
        "{ok_head}{}",
        "a=x:yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(2000)
    );
    assert_eq!(err(&big), SdpError::TooLarge);
    let many = format!("{ok_head}{}", "a=x\r\n".repeat(5000));
    assert_eq!(err(&many), SdpError::TooManyLines);
    let media = format!("{ok_head}{}", "m=audio 0 RTP/AVP 0\r\n".repeat(65));
    assert_eq!(err(&media), SdpError::TooManyLines);
    // Display is meant for a Warning header / reason phrase.
    assert_eq!(
        SdpError::Malformed {
            line: 6,
            reason: "m= port out of range"
        }
        .to_string(),
        "malformed SDP line 6: m= port out of range"
    );
    assert_eq!(SdpError::NoCommonCodec.sip_status(), 488);
    assert_eq!(SdpError::OfferPending.sip_status(), 491);
}

#[test]
fn chrome_offer_typed_view() {
    let m = audio(CHROME_OFFER);
    assert_eq!(m.profile, Profile::DtlsSavpf);
    assert_eq!(m.proto, "UDP/TLS/RTP/SAVPF");
    assert_eq!(m.rtp, Some("192.168.1.23:54321".parse().unwrap()));
    assert!(m.rtcp_mux && m.rtcp_rsize);
    assert_eq!(m.rtcp, m.rtp, "rtcp-mux wins over a=rtcp:9 IN IP4 0.0.0.0");
    assert_eq!(m.direction, Direction::SendRecv);
    let pts: Vec<(u8, CodecKind, u32, u8)> = m
        .codecs
        .iter()
        .map(|c| (c.pt, c.kind, c.clock_rate, c.channels))
        .collect();
    assert_eq!(
        pts,
        vec![
            (111, CodecKind::Opus, 48000, 2),
            (63, CodecKind::Other, 48000, 2),
            (9, CodecKind::Other, 8000, 1),
            (0, CodecKind::Pcmu, 8000, 1),
            (8, CodecKind::Pcma, 8000, 1),
            (13, CodecKind::Other, 8000, 1),
            (110, CodecKind::TelephoneEvent, 48000, 1),
            (126, CodecKind::TelephoneEvent, 8000, 1),
        ]
    );
    let opus = m.first(CodecKind::Opus).unwrap();
    assert_eq!(opus.fmtp.as_deref(), Some("minptime=10;useinbandfec=1"));
    assert_eq!(opus.rtcp_fb, vec!["transport-cc".to_owned()]);
    assert!(!opus.has_nack());
    assert_eq!(m.codec(63).unwrap().fmtp.as_deref(), Some("111/111"));
    assert_eq!(m.telephone_event(8000).unwrap().pt, 126);
    assert_eq!(m.telephone_event(48000).unwrap().pt, 110);
    assert_eq!(
        m.ice,
        Some(IceCredentials {
            ufrag: "Fm2R".into(),
            pwd: "tGHOHbsFZ3I5QpdQJQ/mo+Ce".into()
        })
    );
    assert!(m.ice.as_ref().unwrap().is_valid());
    assert!(!m.ice_lite);
    assert_eq!(m.fingerprints.len(), 1);
    assert_eq!(m.fingerprints[0].algorithm, HashAlgorithm::Sha256);
    assert_eq!(m.fingerprints[0].bytes[..3], [0x7B, 0x8B, 0xF0]);
    assert_eq!(m.fingerprints[0].bytes[31], 0x08);
    assert_eq!(m.setup, Some(Setup::ActPass));
    assert_eq!(m.mid.as_deref(), Some("0"));
    assert!(m.bundled);
    assert_eq!(m.ssrcs, vec![2832170455]);
    assert_eq!(m.candidates.len(), 3);
    let srflx = &m.candidates[1];
    assert_eq!(srflx.typ, "srflx");
    assert_eq!(srflx.address, "203.0.113.77");
    assert_eq!(srflx.raddr.as_deref(), Some("192.168.1.23"));
    assert_eq!(srflx.rport, Some(54321));
    assert_eq!(srflx.priority, 1686052607);
    let tcp = &m.candidates[2];
    assert_eq!(tcp.transport, "tcp");
    assert!(tcp
        .extensions
        .contains(&("tcptype".into(), "active".into())));
    assert!(m.crypto.is_empty());
}

#[test]
fn chrome_trickle_offer_with_mdns_candidate() {
    let m = audio(CHROME_OFFER_MDNS);
    assert!(m.zero_address);
    assert_eq!(m.rtp, None, "0.0.0.0:9 is no address to send to");
    assert_eq!(m.direction, Direction::SendRecv);
    assert_eq!(m.candidates.len(), 1);
    assert_eq!(
        m.candidates[0].address,
        "3b0c9a5e-6c1f-4f5e-9a51-2f0d7e8b4c21.local"
    );
    assert_eq!(m.candidates[0].port, 61022);
    assert!(!m.rtcp_rsize);
}

#[test]
fn legacy_phone_offer_with_lf_and_rtcp_attribute() {
    let sd = parse(PHONE_OFFER_LF);
    assert_eq!(
        sd.bandwidths,
        vec![Bandwidth {
            bwtype: "AS".into(),
            value: "84".into()
        }]
    );
    let m = audio(PHONE_OFFER_LF);
    assert_eq!(m.profile, Profile::Avp);
    assert_eq!(m.rtp, Some("198.51.100.20:11780".parse().unwrap()));
    assert_eq!(m.rtcp, Some("198.51.100.20:11781".parse().unwrap()));
    assert!(!m.rtcp_mux);
    let kinds: Vec<CodecKind> = m.codecs.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CodecKind::Pcma,
            CodecKind::Pcmu,
            CodecKind::Other,
            CodecKind::Other,
            CodecKind::TelephoneEvent
        ]
    );
    assert_eq!(m.codec(18).unwrap().name, "G729");
    assert_eq!(m.codec(18).unwrap().fmtp.as_deref(), Some("annexb=no"));
    assert_eq!(m.codec(101).unwrap().fmtp.as_deref(), Some("0-15"));
    assert_eq!(m.ptime, Some(20));
    assert!(m.ice.is_none() && m.fingerprints.is_empty() && m.setup.is_none());
}

#[test]
fn rtcp_address_rules() {
    // No a=rtcp, no mux: RTP port + 1.
    let m = audio(SIPP_OFFER);
    assert_eq!(m.rtp, Some("127.0.0.1:6000".parse().unwrap()));
    assert_eq!(m.rtcp, Some("127.0.0.1:6001".parse().unwrap()));
    assert_eq!(m.codecs.len(), 1);
    assert!(m.telephone_event(8000).is_none());
    // a=rtcp with a port only, and with another address.
    let base = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    let m = audio(&format!("{base}a=rtcp:6000\r\n"));
    assert_eq!(m.rtcp, Some("192.0.2.1:6000".parse().unwrap()));
    let m = audio(&format!("{base}a=rtcp:6000 IN IP4 192.0.2.77\r\n"));
    assert_eq!(m.rtcp, Some("192.0.2.77:6000".parse().unwrap()));
    // Media-level c= overrides the session's.
    let m = audio(&format!("{base}c=IN IP4 198.51.100.1\r\n"));
    assert_eq!(m.rtp, Some("198.51.100.1:5004".parse().unwrap()));
    assert_eq!(m.rtcp, Some("198.51.100.1:5005".parse().unwrap()));
    // IPv6.
    let m = audio("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n");
    assert_eq!(
        m.rtp,
        Some("[2001:db8::1]:5004".parse::<SocketAddr>().unwrap())
    );
    // Malformed a=rtcp is an error.
    let sd = parse(&format!("{base}a=rtcp:port\r\n"));
    assert_eq!(
        MediaInfo::from_session(&sd, 0),
        Err(SdpError::BadAttribute("rtcp"))
    );
}

#[test]
fn old_style_hold_and_addresses() {
    let hold = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    let m = audio(hold);
    assert!(m.zero_address);
    assert_eq!((m.rtp, m.rtcp), (None, None));
    assert_eq!(m.direction, Direction::SendRecv);
    assert_eq!(m.effective_direction(), Direction::SendOnly);
    let m = audio(&hold.replace(
        "m=audio 5004 RTP/AVP 0",
        "m=audio 5004 RTP/AVP 0\r\na=recvonly",
    ));
    assert_eq!(m.effective_direction(), Direction::Inactive);
    // A host name cannot be used (no resolver here) unless the stream is declined.
    let fqdn = "v=0\r\no=- 1 1 IN IP4 pbx.example.com\r\ns=-\r\nc=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    let sd = parse(fqdn);
    assert_eq!(
        MediaInfo::from_session(&sd, 0),
        Err(SdpError::UnsupportedAddress)
    );
    let sd = parse(&fqdn.replace("5004", "0"));
    assert!(MediaInfo::from_session(&sd, 0).is_ok());
    // An active stream without any c= line.
    let sd = parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n");
    assert_eq!(
        MediaInfo::from_session(&sd, 0),
        Err(SdpError::MissingLine("c="))
    );
    // IP4 label with an IPv6 literal.
    let sd = parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 ::1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n");
    assert_eq!(
        MediaInfo::from_session(&sd, 0),
        Err(SdpError::UnsupportedAddress)
    );
}

#[test]
fn static_payload_types_and_wildcard_feedback() {
    let m = audio(
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
         m=audio 5004 RTP/AVPF 0 8 18 96 0\r\na=rtcp-fb:* nack\r\na=rtcp-fb:8 ccm fir\r\n",
    );
    let names: Vec<&str> = m.codecs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["PCMU", "PCMA", "G729"],
        "96 has no rtpmap, duplicate 0 once"
    );
    assert_eq!(
        m.codec(8).unwrap().rtcp_fb,
        vec!["nack".to_owned(), "ccm fir".to_owned()]
    );
    assert!(m.codec(0).unwrap().has_nack());
    assert_eq!(m.profile, Profile::Avpf);
    // A malformed rtpmap is an error, not a guess.
    let sd = parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5004 RTP/AVP 96\r\na=rtpmap:96 opus\r\n");
    assert_eq!(
        MediaInfo::from_session(&sd, 0),
        Err(SdpError::BadAttribute("rtpmap"))
    );
}

#[test]
fn sdes_crypto_lines() {
    let m = audio(SDES_OFFER);
    assert_eq!(m.profile, Profile::Savp);
    // Tag 1 is AES-256 (unsupported) and tag 2 carries an MKI: both skipped.
    assert_eq!(m.crypto.len(), 1);
    let c = &m.crypto[0];
    assert_eq!((c.tag, c.suite), (3, SrtpSuite::AesCm128HmacSha1_32));
    assert_eq!(&c.key.key, b"70xwPH5@/,L:S1wY");
    assert_eq!(&c.key.salt, b"\"~='EpgT%(i_Vc");
    assert_eq!(
        Crypto::parse(
            "2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4"
        ),
        Err(SdpError::BadAttribute("crypto"))
    );
    let c = Crypto::parse(
        "2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20",
    )
    .unwrap();
    assert_eq!(&c.key.key, b"YS___semctl () {");
    assert_eq!(
        c.to_string(),
        "2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    );
    assert_eq!(Crypto::parse(&c.to_string()).unwrap(), c);
    // Wrong key length, bad base64, session parameters.
    for bad in [
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9",
        "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz UNENCRYPTED_SRTP",
        "1 AES_CM_128_HMAC_SHA1_80 WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    ] {
        assert!(Crypto::parse(bad).is_err(), "{bad}");
    }
    // GCM: 16-byte key + 12-byte salt.
    let gcm = Crypto::parse("5 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==")
        .unwrap();
    assert_eq!(gcm.key.key[15], 15);
    assert_eq!(
        gcm.key.salt[..12],
        [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]
    );
    assert_eq!(gcm.suite.abi_code(), 3);
    assert_eq!(Crypto::parse(&gcm.to_string()).unwrap(), gcm);
}

#[test]
fn fingerprints_candidates_and_credentials() {
    let fp =
        Fingerprint::parse("SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB")
            .unwrap();
    assert_eq!(fp.algorithm, HashAlgorithm::Sha1);
    assert_eq!(
        fp.to_string(),
        "sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB"
    );
    assert!(Fingerprint::parse("sha-256 4A:AD").is_err(), "short digest");
    assert!(Fingerprint::parse("md5 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B").is_err());
    assert!(
        Fingerprint::parse("sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:A")
            .is_err()
    );
    assert_eq!(
        Fingerprint::sha256([0xAB; 32]).to_string().len(),
        "sha-256 ".len() + 32 * 3 - 1
    );

    let host = Candidate::host(0, [203, 0, 113, 1].into(), 40000);
    assert_eq!(
        host.to_string(),
        "1 1 udp 2130706431 203.0.113.1 40000 typ host"
    );
    assert_eq!(
        Candidate::host(1, [10, 0, 0, 1].into(), 40000).priority,
        2130706175
    );
    let line = "2756305836 1 udp 1686052607 203.0.113.77 54321 typ srflx raddr 192.168.1.23 rport 54321 generation 0";
    let c = Candidate::parse(line).unwrap();
    assert_eq!(c.to_string(), line);
    assert!(Candidate::parse("1 1 udp 1 1.2.3.4 5 host").is_err());
    assert!(Candidate::parse("1 1 udp x 1.2.3.4 5 typ host").is_err());

    let mut r = rng(7);
    let a = IceCredentials::generate(&mut r);
    let b = IceCredentials::generate(&mut r);
    assert!(a.is_valid() && b.is_valid());
    assert_eq!((a.ufrag.len(), a.pwd.len()), (8, 24));
    assert_ne!(a, b);
    assert_eq!(
        IceCredentials::generate(&mut rng(7)),
        a,
        "deterministic given the RNG"
    );
    assert!(!IceCredentials {
        ufrag: "abc".into(),
        pwd: "x".repeat(22)
    }
    .is_valid());
}

#[test]
fn choosing_the_audio_section() {
    let sd = parse(CHROME_OFFER_VIDEO);
    assert_eq!(find_audio(&sd, None), Ok(0));
    let v = MediaInfo::from_session(&sd, 1).unwrap();
    assert_eq!(v.media, "video");
    assert!(v.codec(96).unwrap().has_nack());
    assert!(v.bundled);
    let video_only = CHROME_OFFER_VIDEO.replace("m=audio 50000", "m=audio 0");
    assert_eq!(
        find_audio(&parse(&video_only), None),
        Err(SdpError::AudioDeclined)
    );
    let sd = parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\n");
    assert_eq!(find_audio(&sd, None), Err(SdpError::NoAudio));
    // Two audio sections: the preferred mid wins.
    let two = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
        m=audio 5004 RTP/AVP 0\r\na=mid:a\r\nm=audio 5006 RTP/AVP 0\r\na=mid:b\r\n";
    assert_eq!(find_audio(&parse(two), Some("b")), Ok(1));
    assert_eq!(find_audio(&parse(two), Some("zz")), Ok(0));
}

#[test]
fn direction_algebra() {
    use Direction::*;
    for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
        assert_eq!(Direction::from_attr(d.as_str()), Some(d));
        assert_eq!(d.reversed().reversed(), d);
        assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
    }
    assert_eq!(SendOnly.reversed(), RecvOnly);
    assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
    assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
    assert_eq!(Direction::from_attr("SENDONLY"), Some(SendOnly));
    assert_eq!(Direction::from_attr("sendrecvx"), None);
}

#[test]
fn building_a_description_by_hand() {
    let mut sd = SessionDescription::new(Origin {
        username: "-".into(),
        session_id: "1".into(),
        session_version: "1".into(),
        net_type: "IN".into(),
        addr_type: "IP4".into(),
        address: "192.0.2.1".into(),
    });
    sd.connection = Some(Connection {
        net_type: "IN".into(),
        addr_type: "IP4".into(),
        address: "192.0.2.1".into(),
    });
    let mut m = MediaDescription::new("audio", 5004, "RTP/AVP", vec!["0".into()]);
    m.push_flag("sendrecv");
    m.push_attr("ptime", "20");
    sd.media.push(m);
    assert_eq!(
        sd.to_string(),
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\na=sendrecv\r\na=ptime:20\r\n"
    );
    assert_eq!(sd.media[0].attributes[1], Attribute::new("ptime", "20"));
}

// --- properties ---------------------------------------------------------------

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,11}"
}

fn text() -> impl Strategy<Value = String> {
    // Free text: printable, no CR/LF, no trailing white space (trimmed by the parser).
    "[ -~]{0,20}[!-~]"
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (token(), proptest::option::of(prop_oneof!["", text()]))
        .prop_map(|(name, value)| Attribute { name, value })
}

fn connection() -> impl Strategy<Value = Connection> {
    (any::<[u8; 4]>()).prop_map(|ip| Connection {
        net_type: "IN".into(),
        addr_type: "IP4".into(),
        address: std::net::Ipv4Addr::from(ip).to_string(),
    })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (token(), 0u32..100_000).prop_map(|(t, v)| Bandwidth {
        bwtype: t,
        value: v.to_string(),
    })
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        token(),
        any::<u16>(),
        proptest::option::of(1u16..8),
        prop_oneof![
            Just("RTP/AVP"),
            Just("UDP/TLS/RTP/SAVPF"),
            Just("RTP/SAVP"),
            Just("UDP/DTLS/SCTP")
        ],
        proptest::collection::vec(0u8..128, 0..6),
        proptest::option::of(text()),
        proptest::option::of(connection()),
        proptest::collection::vec(bandwidth(), 0..2),
        proptest::collection::vec(attribute(), 0..8),
    )
        .prop_map(
            |(media, port, port_count, proto, pts, info, connection, bandwidths, attributes)| {
                MediaDescription {
                    media,
                    port,
                    port_count,
                    proto: proto.into(),
                    formats: pts.iter().map(u8::to_string).collect(),
                    info,
                    connection,
                    bandwidths,
                    key: None,
                    attributes,
                }
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        (token(), any::<u64>(), any::<u32>()),
        text(),
        proptest::option::of(text()),
        proptest::option::of(connection()),
        proptest::collection::vec(bandwidth(), 0..2),
        proptest::collection::vec(attribute(), 0..8),
        proptest::collection::vec(media(), 0..4),
    )
        .prop_map(
            |((user, id, ver), name, info, connection, bandwidths, attributes, media)| {
                let mut sd = SessionDescription::new(Origin {
                    username: user,
                    session_id: id.to_string(),
                    session_version: ver.to_string(),
                    net_type: "IN".into(),
                    addr_type: "IP4".into(),
                    address: "192.0.2.1".into(),
                });
                sd.session_name = name;
                sd.info = info;
                sd.connection = connection;
                sd.bandwidths = bandwidths;
                sd.times = vec![Timing {
                    start: "0".into(),
                    stop: "0".into(),
                    repeats: vec![],
                }];
                sd.attributes = attributes;
                sd.media = media;
                sd
            },
        )
}

proptest! {
    #[test]
    fn generated_descriptions_round_trip_exactly(sd in session()) {
        let text = sd.to_string();
        let back = SessionDescription::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(&back, &sd);
        prop_assert_eq!(back.to_string(), text);
        for i in 0..sd.media.len() {
            // Typed views never panic on arbitrary attribute soup.
            let _ = MediaInfo::from_session(&sd, i);
        }
    }

    #[test]
    fn mutated_real_sdp_never_panics_and_stays_stable(
        which in 0usize..ALL.len(),
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = ALL[which].as_bytes().to_vec();
        for (at, b) in cuts {
            let i = at.index(bytes.len());
            match b % 3 {
                0 => bytes[i] = b,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, b),
            }
        }
        if let Ok(sd) = SessionDescription::parse(&bytes) {
            let w1 = sd.to_bytes();
            let sd2 = SessionDescription::parse(&w1).unwrap();
            prop_assert_eq!(sd2.to_bytes(), w1);
            for i in 0..sd.media.len() {
                let _ = MediaInfo::from_session(&sd, i);
            }
        }
    }

    #[test]
    fn line_soup_never_panics(lines in proptest::collection::vec(
        prop_oneof![
            Just("v=0".to_owned()), Just("o=- 1 1 IN IP4 1.2.3.4".to_owned()), Just("s=-".to_owned()),
            Just("c=IN IP4 0.0.0.0".to_owned()), Just("t=0 0".to_owned()), Just("m=audio 9 RTP/AVP 0".to_owned()),
            Just("a=rtcp-mux".to_owned()), Just("a=rtcp:1".to_owned()), Just("a=rtpmap:0 PCMU/8000".to_owned()),
            "[a-z]=[ -~]{0,30}",
        ], 0..20)) {
        let body = lines.join("\r\n");
        if let Ok(sd) = SessionDescription::parse(body.as_bytes()) {
            let w1 = sd.to_bytes();
            prop_assert_eq!(SessionDescription::parse(&w1).unwrap().to_bytes(), w1);
        }
    }
}
