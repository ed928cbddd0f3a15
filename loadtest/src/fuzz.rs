//! Fuzz entry points for the parsers of network input (behind the `fuzz`
//! feature; targets in `fuzz/fuzz_targets/`).

/// An ng reply datagram: cookie split, bencode decode, and the SDP and
/// crypto parsing applied to its `sdp` value.
pub fn ng_reply(data: &[u8]) {
    if let Ok((_, v)) = crate::ng::parse_reply(data) {
        if let Some(sdp) = v.text("sdp") {
            if let Some(m) = crate::sdp::parse(&sdp) {
                let _ = m.payload_type_of("opus");
                for c in &m.cryptos {
                    let _ = crate::sdp::parse_crypto(c);
                }
                // The webrtc scenario's reading of the proxy's transport.
                if let Ok(t) = crate::webrtc::RemoteTransport::from_sdp(&m) {
                    let _ = t.our_setup();
                }
            }
        }
        // Whatever decodes must encode again to the same value.
        if let Ok(back) = crate::bencode::decode(&v.encode()) {
            assert_eq!(back, v);
        }
    }
}

/// A received media packet: RTP header parsing, payload marker, sequence
/// mapping and receive statistics; and, as on a WebRTC leg, STUN parsing,
/// integrity checking and answering.
pub fn rtp_receive(data: &[u8]) {
    if let Ok(p) = crate::stun::parse(data) {
        let _ = crate::stun::integrity_ok(data, &p, b"fuzz-password-0123456789");
        let verdict = crate::stun::judge_check(
            data,
            &p,
            b"ufrag",
            b"peer",
            b"fuzz-password-0123456789",
            crate::stun::IceRole::Controlled(1),
        );
        let mut out = [0u8; crate::stun::MAX_WRITTEN];
        if verdict != crate::stun::CheckVerdict::Drop {
            let from = std::net::SocketAddr::from(([127, 0, 0, 1], 5000));
            assert!(crate::stun::write_success(&mut out, &p.tid, from, b"pw").is_some());
        }
    }
    let Some(view) = crate::packet::parse(data) else {
        return;
    };
    let payload = &data[view.payload_start..view.payload_end];
    let mut acc = crate::stats::DirAcc::new();
    let mut tracker = crate::stats::SeqTracker::new();
    let mut mapper = crate::stats::SeqMapper::default();
    if let Some(m) = crate::packet::Marker::read(payload) {
        acc.on_packet(&mut tracker, m.seq, m.send_ns, m.send_ns.wrapping_add(1000));
    }
    if let Some(g) = mapper.map(view.seq, Some(u64::from(view.ssrc)), view.pt.into()) {
        acc.on_packet(&mut tracker, g, 0, 1);
    }
    let _ = acc.summary();
}
