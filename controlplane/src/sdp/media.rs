//! A typed view of one media section: everything the B2BUA and the data
//! plane need from a peer's description of its audio stream.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::attrs::{
    parse_pt, split_pt_value, Candidate, Crypto, Direction, Fingerprint, IceCredentials, RtcpAttr,
    Rtpmap, Setup,
};
use super::error::SdpError;
use super::model::{parse_decimal, Connection, SessionDescription};

/// Transport profile of a media section (the `m=` proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `RTP/AVP` (plain RTP, legacy).
    Avp,
    /// `RTP/AVPF`.
    Avpf,
    /// `RTP/SAVP` (SRTP keyed with SDES `a=crypto`).
    Savp,
    /// `RTP/SAVPF`.
    Savpf,
    /// `UDP/TLS/RTP/SAVP` (DTLS-SRTP).
    DtlsSavp,
    /// `UDP/TLS/RTP/SAVPF` (DTLS-SRTP with feedback: WebRTC).
    DtlsSavpf,
    /// Anything else (data channels, TCP, ...).
    Other,
}

impl Profile {
    /// Classifies a proto string (ASCII case-insensitive).
    pub fn parse(proto: &str) -> Self {
        match proto.to_ascii_uppercase().as_str() {
            "RTP/AVP" => Profile::Avp,
            "RTP/AVPF" => Profile::Avpf,
            "RTP/SAVP" => Profile::Savp,
            "RTP/SAVPF" => Profile::Savpf,
            "UDP/TLS/RTP/SAVP" => Profile::DtlsSavp,
            "UDP/TLS/RTP/SAVPF" => Profile::DtlsSavpf,
            _ => Profile::Other,
        }
    }

    /// Whether the profile is DTLS-SRTP.
    pub fn is_dtls(self) -> bool {
        matches!(self, Profile::DtlsSavp | Profile::DtlsSavpf)
    }

    /// Whether the profile is SRTP keyed by SDES.
    pub fn is_sdes(self) -> bool {
        matches!(self, Profile::Savp | Profile::Savpf)
    }

    /// Whether the profile is plain RTP.
    pub fn is_plain(self) -> bool {
        matches!(self, Profile::Avp | Profile::Avpf)
    }
}

/// The codecs the gateway treats specially; everything else is [`CodecKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecKind {
    /// G.711 mu-law at 8 kHz.
    Pcmu,
    /// G.711 A-law at 8 kHz.
    Pcma,
    /// Opus (48 kHz RTP clock).
    Opus,
    /// RFC 4733 telephone events (any rate).
    TelephoneEvent,
    /// Anything else.
    Other,
}

/// One payload format of a media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written (or from the static table).
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channels (1 unless given).
    pub channels: u8,
    /// `a=fmtp` parameters for this PT, verbatim.
    pub fmtp: Option<String>,
    /// `a=rtcp-fb` values for this PT (and for `*`).
    pub rtcp_fb: Vec<String>,
    /// Classification.
    pub kind: CodecKind,
}

impl Codec {
    /// Whether the codec offers generic NACK feedback (`a=rtcp-fb:<pt> nack`).
    pub fn has_nack(&self) -> bool {
        self.rtcp_fb.iter().any(|f| f.eq_ignore_ascii_case("nack"))
    }
}

fn classify(name: &str, rate: u32) -> CodecKind {
    let n = name.to_ascii_lowercase();
    match (n.as_str(), rate) {
        ("pcmu", 8000) => CodecKind::Pcmu,
        ("pcma", 8000) => CodecKind::Pcma,
        ("opus", 48000) => CodecKind::Opus,
        ("telephone-event", _) => CodecKind::TelephoneEvent,
        _ => CodecKind::Other,
    }
}

/// RFC 3551 static audio payload types.
fn static_pt(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    })
}

/// Everything about one media section, with session-level defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// Index of the section in the description.
    pub index: usize,
    /// Media type (`audio`, ...).
    pub media: String,
    /// Transport profile.
    pub profile: Profile,
    /// The `m=` proto as written.
    pub proto: String,
    /// The `m=` port (0: declined).
    pub port: u16,
    /// Effective connection address (media-level `c=`, else session-level).
    pub address: Option<IpAddr>,
    /// Whether that address is unspecified (`0.0.0.0` or `::`): old-style
    /// hold from a legacy peer, "not yet known" from a trickling browser.
    pub zero_address: bool,
    /// Where to send RTP: `None` if the port is 0 or the address unspecified.
    pub rtp: Option<SocketAddr>,
    /// Where to send RTCP: the RTP address with rtcp-mux, the `a=rtcp`
    /// port and address if given, else RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `a=rtcp-rsize`.
    pub rtcp_rsize: bool,
    /// Direction attribute (media level, else session level, else sendrecv).
    pub direction: Direction,
    /// Payload formats in `m=` order (dynamic PTs without `a=rtpmap` are left out).
    pub codecs: Vec<Codec>,
    /// `a=ptime`.
    pub ptime: Option<u32>,
    /// `a=maxptime`.
    pub maxptime: Option<u32>,
    /// ICE credentials (media level, else session level).
    pub ice: Option<IceCredentials>,
    /// Session-level `a=ice-lite`.
    pub ice_lite: bool,
    /// Well-formed `a=candidate` lines (others are skipped).
    pub candidates: Vec<Candidate>,
    /// Well-formed `a=fingerprint` lines (media level, else session level).
    pub fingerprints: Vec<Fingerprint>,
    /// `a=setup` (media level, else session level).
    pub setup: Option<Setup>,
    /// `a=crypto` lines the data plane can use (others are skipped).
    pub crypto: Vec<Crypto>,
    /// `a=mid`.
    pub mid: Option<String>,
    /// Whether the mid is in a session-level `a=group:BUNDLE`.
    pub bundled: bool,
    /// SSRCs announced with `a=ssrc`, in order, without duplicates.
    pub ssrcs: Vec<u32>,
}

fn connection_ip(c: &Connection) -> Result<IpAddr, SdpError> {
    if !c.net_type.eq_ignore_ascii_case("IN") {
        return Err(SdpError::UnsupportedAddress);
    }
    // Strip a multicast "/ttl[/count]" suffix.
    let addr = c.address.split('/').next().unwrap_or("");
    let ip: IpAddr = addr.parse().map_err(|_| SdpError::UnsupportedAddress)?;
    match (c.addr_type.to_ascii_uppercase().as_str(), ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(SdpError::UnsupportedAddress),
    }
}

fn is_unspecified(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) || ip == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
}

impl MediaInfo {
    /// Extracts section `index` of `sd`. Errors for what the gateway cannot
    /// work with (a host name as address of an active stream, a malformed
    /// `a=rtpmap`, `a=rtcp` or `a=setup`); unknown attributes are ignored.
    pub fn from_session(sd: &SessionDescription, index: usize) -> Result<Self, SdpError> {
        let m = sd.media.get(index).ok_or(SdpError::NoAudio)?;
        let profile = Profile::parse(&m.proto);
        let conn = m.connection.as_ref().or(sd.connection.as_ref());
        let address = match conn {
            None if m.port != 0 => return Err(SdpError::MissingLine("c=")),
            None => None,
            Some(c) => match connection_ip(c) {
                Ok(ip) => Some(ip),
                Err(e) if m.port != 0 => return Err(e),
                Err(_) => None,
            },
        };
        let zero_address = address.is_some_and(is_unspecified);
        let active_ip = address.filter(|ip| !is_unspecified(*ip) && m.port != 0);
        let rtp = active_ip.map(|ip| SocketAddr::new(ip, m.port));

        let rtcp_mux = m.has_attr("rtcp-mux");
        let rtcp_attr = match m.attr("rtcp") {
            Some(v) => Some(RtcpAttr::parse(v)?),
            None => None,
        };
        let rtcp = if rtcp_mux {
            rtp
        } else if let Some(a) = &rtcp_attr {
            let ip = match &a.address {
                Some(s) => s.parse::<IpAddr>().ok(),
                None => active_ip,
            };
            ip.filter(|ip| !is_unspecified(*ip) && a.port != 0 && rtp.is_some())
                .map(|ip| SocketAddr::new(ip, a.port))
        } else {
            match (active_ip, m.port.checked_add(1)) {
                (Some(ip), Some(p)) => Some(SocketAddr::new(ip, p)),
                _ => None,
            }
        };

        let direction = m
            .attributes
            .iter()
            .find_map(|a| Direction::from_attr(&a.name).filter(|_| a.value.is_none()))
            .or_else(|| {
                sd.attributes
                    .iter()
                    .find_map(|a| Direction::from_attr(&a.name).filter(|_| a.value.is_none()))
            })
            .unwrap_or_default();

        let codecs = if profile == Profile::Other && !m.proto.to_ascii_uppercase().contains("RTP/")
        {
            Vec::new()
        } else {
            Self::codecs(m)?
        };

        let ice = {
            let ufrag = m.attr("ice-ufrag").or_else(|| sd.attr("ice-ufrag"));
            let pwd = m.attr("ice-pwd").or_else(|| sd.attr("ice-pwd"));
            match (ufrag, pwd) {
                (Some(u), Some(p)) if !u.trim().is_empty() && !p.trim().is_empty() => {
                    Some(IceCredentials {
                        ufrag: u.trim().to_owned(),
                        pwd: p.trim().to_owned(),
                    })
                }
                _ => None,
            }
        };

        let mut fingerprints: Vec<Fingerprint> = m
            .attrs("fingerprint")
            .filter_map(|v| Fingerprint::parse(v).ok())
            .collect();
        if fingerprints.is_empty() && !m.has_attr("fingerprint") {
            fingerprints = sd
                .attrs("fingerprint")
                .filter_map(|v| Fingerprint::parse(v).ok())
                .collect();
        }
        let setup = match m.attr("setup").or_else(|| sd.attr("setup")) {
            Some(v) => Some(Setup::parse(v)?),
            None => None,
        };
        let mid = m
            .attr("mid")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let bundled = mid.as_deref().is_some_and(|mid| {
            sd.attrs("group").any(|g| {
                let mut it = g.split_ascii_whitespace();
                it.next().is_some_and(|s| s.eq_ignore_ascii_case("BUNDLE")) && it.any(|x| x == mid)
            })
        });
        let mut ssrcs = Vec::new();
        for v in m.attrs("ssrc") {
            if let Some(id) = v
                .split_ascii_whitespace()
                .next()
                .and_then(parse_decimal::<u32>)
            {
                if !ssrcs.contains(&id) {
                    ssrcs.push(id);
                }
            }
        }
        Ok(Self {
            index,
            media: m.media.clone(),
            profile,
            proto: m.proto.clone(),
            port: m.port,
            address,
            zero_address,
            rtp,
            rtcp,
            rtcp_mux,
            rtcp_rsize: m.has_attr("rtcp-rsize"),
            direction,
            codecs,
            ptime: m.attr("ptime").and_then(|v| parse_decimal(v.trim())),
            maxptime: m.attr("maxptime").and_then(|v| parse_decimal(v.trim())),
            ice,
            ice_lite: sd.has_attr("ice-lite"),
            candidates: m
                .attrs("candidate")
                .filter_map(|v| Candidate::parse(v).ok())
                .collect(),
            fingerprints,
            setup,
            crypto: m
                .attrs("crypto")
                .filter_map(|v| Crypto::parse(v).ok())
                .collect(),
            mid,
            bundled,
            ssrcs,
        })
    }

    fn codecs(m: &super::model::MediaDescription) -> Result<Vec<Codec>, SdpError> {
        let mut rtpmaps: Vec<Rtpmap> = Vec::new();
        for v in m.attrs("rtpmap") {
            let r = Rtpmap::parse(v)?;
            if !rtpmaps.iter().any(|x| x.pt == r.pt) {
                rtpmaps.push(r);
            }
        }
        let mut out: Vec<Codec> = Vec::with_capacity(m.formats.len());
        for f in &m.formats {
            let Some(pt) = parse_pt(f) else { continue };
            if out.iter().any(|c| c.pt == pt) {
                continue;
            }
            let (name, clock_rate, channels) = match rtpmaps.iter().find(|r| r.pt == pt) {
                Some(r) => (r.name.clone(), r.clock_rate, r.channels.unwrap_or(1)),
                None => match static_pt(pt) {
                    Some((n, r, c)) => (n.to_owned(), r, c),
                    None => continue,
                },
            };
            let fmtp = m.attrs("fmtp").find_map(|v| match split_pt_value(v) {
                Some((Some(p), rest)) if p == pt => Some(rest.to_owned()),
                _ => None,
            });
            let rtcp_fb = m
                .attrs("rtcp-fb")
                .filter_map(|v| match split_pt_value(v) {
                    Some((p, rest)) if p.is_none_or(|p| p == pt) && !rest.is_empty() => {
                        Some(rest.to_owned())
                    }
                    _ => None,
                })
                .collect();
            out.push(Codec {
                pt,
                kind: classify(&name, clock_rate),
                name,
                clock_rate,
                channels,
                fmtp,
                rtcp_fb,
            });
        }
        Ok(out)
    }

    /// The first codec of `kind`.
    pub fn first(&self, kind: CodecKind) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.kind == kind)
    }

    /// The telephone-event format at `rate`, if offered.
    pub fn telephone_event(&self, rate: u32) -> Option<&Codec> {
        self.codecs
            .iter()
            .find(|c| c.kind == CodecKind::TelephoneEvent && c.clock_rate == rate)
    }

    /// The codec with payload type `pt`.
    pub fn codec(&self, pt: u8) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.pt == pt)
    }

    /// The direction once old-style hold is applied: an unspecified `c=`
    /// address means "do not send to me", so the receive half is dropped.
    /// Meaningful for legacy peers only (browsers write `0.0.0.0` while trickling).
    pub fn effective_direction(&self) -> Direction {
        if self.zero_address {
            Direction::from_flags(self.direction.sends(), false)
        } else {
            self.direction
        }
    }
}

/// Index of the audio section to use: the first audio section with a
/// non-zero port (preferring one whose mid is `prefer_mid`).
///
/// Errors: [`SdpError::NoAudio`] when there is no audio section,
/// [`SdpError::AudioDeclined`] when every audio section has port 0.
pub fn find_audio(sd: &SessionDescription, prefer_mid: Option<&str>) -> Result<usize, SdpError> {
    let audio = |m: &&super::model::MediaDescription| m.media.eq_ignore_ascii_case("audio");
    if !sd.media.iter().any(|m| audio(&m)) {
        return Err(SdpError::NoAudio);
    }
    let active = |i: usize| sd.media.get(i).is_some_and(|m| audio(&m) && m.port != 0);
    if let Some(mid) = prefer_mid {
        if let Some(i) =
            (0..sd.media.len()).find(|&i| active(i) && sd.media[i].attr("mid") == Some(mid))
        {
            return Ok(i);
        }
    }
    (0..sd.media.len())
        .find(|&i| active(i))
        .ok_or(SdpError::AudioDeclined)
}
