//! The SRTP/SRTCP context: session keys plus per-SSRC state.

use core::fmt;

use aes::cipher::KeyInit;
use aes::Aes128Enc;
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_128_GCM};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::kdf::{ctr_xor, Kdf, Label};
use crate::replay::ReplayWindow;
use crate::{Error, Suite};

type HmacSha1 = Hmac<Sha1>;

/// RTCP fixed header (V/P/RC, PT, length, sender SSRC): never encrypted.
const RTCP_HEADER_LEN: usize = 8;
/// The SRTCP E flag in the E/index word.
const E_FLAG: u32 = 0x8000_0000;
/// Largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u32 = 0x7FFF_FFFF;
/// GCM tag length (RFC 7714 §7: only 16-byte tags are supported here).
const GCM_TAG_LEN: usize = 16;

/// Per-context settings.
///
/// ```
/// let mut config = strait_srtp::Config::default();
/// config.max_ssrcs = 4;
/// config.replay_window = 128;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Maximum number of SSRCs tracked (per-SSRC state is preallocated for
    /// this many). A packet from one more SSRC is refused with
    /// [`Error::TooManySsrcs`]. Range `1..=`[`Config::MAX_SSRCS`]; default 16.
    pub max_ssrcs: usize,
    /// Replay window size in packets, for SRTP and (separately) SRTCP.
    /// Range [`Config::MIN_REPLAY_WINDOW`]`..=`[`Config::MAX_REPLAY_WINDOW`];
    /// default 64.
    pub replay_window: u32,
    /// Whether `protect_rtcp` encrypts (sets the E flag). Default `true`.
    /// Unprotection honours the E flag of each packet either way.
    pub encrypt_srtcp: bool,
}

impl Config {
    /// Upper bound of [`Config::max_ssrcs`].
    pub const MAX_SSRCS: usize = 4096;
    /// Smallest replay window RFC 3711 §3.3.2 allows.
    pub const MIN_REPLAY_WINDOW: u32 = 64;
    /// Largest replay window accepted.
    pub const MAX_REPLAY_WINDOW: u32 = 0x8000;

    fn validate(&self) -> Result<(), Error> {
        let ssrcs_ok = (1..=Self::MAX_SSRCS).contains(&self.max_ssrcs);
        let window_ok =
            (Self::MIN_REPLAY_WINDOW..=Self::MAX_REPLAY_WINDOW).contains(&self.replay_window);
        if ssrcs_ok && window_ok {
            Ok(())
        } else {
            Err(Error::BadConfig)
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_ssrcs: 16,
            replay_window: 64,
            encrypt_srtcp: true,
        }
    }
}

/// Session keys of one of RTP / RTCP, with key schedules precomputed.
// A context holds exactly two of these; boxing the larger variant would only
// add an indirection per packet.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Cipher {
    Cm {
        aes: Aes128Enc,
        salt: [u8; 14],
        /// HMAC-SHA1 already keyed: cloned per packet, never re-keyed.
        mac: HmacSha1,
    },
    Gcm {
        key: LessSafeKey,
        salt: [u8; 12],
    },
}

impl Cipher {
    /// Builds the session cipher from derived session keys. `auth` is
    /// ignored for GCM.
    pub(crate) fn new(suite: Suite, enc: &[u8; 16], salt: &[u8], auth: &[u8]) -> Self {
        if suite.is_aead() {
            let mut s = [0u8; 12];
            let n = salt.len().min(12);
            s[..n].copy_from_slice(&salt[..n]);
            let key = UnboundKey::new(&AES_128_GCM, enc).expect("AES-128-GCM takes a 16-byte key");
            Cipher::Gcm {
                key: LessSafeKey::new(key),
                salt: s,
            }
        } else {
            let mut s = [0u8; 14];
            let n = salt.len().min(14);
            s[..n].copy_from_slice(&salt[..n]);
            Cipher::Cm {
                aes: Aes128Enc::new(enc.into()),
                salt: s,
                mac: <HmacSha1 as Mac>::new_from_slice(auth)
                    .expect("HMAC accepts keys of any length"),
            }
        }
    }

    /// Derives the session keys for RTP (`rtcp == false`) or RTCP.
    fn derive(suite: Suite, kdf: &Kdf, rtcp: bool) -> Self {
        let (l_enc, l_auth, l_salt) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)
        };
        let mut enc = [0u8; 16];
        let mut salt = [0u8; 14];
        let mut auth = [0u8; 20];
        kdf.derive(l_enc, &mut enc);
        // The session salt has the master salt's length (RFC 7714 §11: 12
        // bytes for GCM).
        let salt = &mut salt[..suite.master_salt_len()];
        kdf.derive(l_salt, salt);
        if !suite.is_aead() {
            kdf.derive(l_auth, &mut auth);
        }
        Self::new(suite, &enc, salt, &auth)
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.write_str(match self {
            Cipher::Cm { .. } => "Cipher::AesCmHmacSha1 { .. }",
            Cipher::Gcm { .. } => "Cipher::AesGcm { .. }",
        })
    }
}

/// AES-CM IV (RFC 3711 §4.1.1): `salt * 2^16 XOR ssrc * 2^64 XOR index * 2^16`.
#[inline]
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= *s;
    }
    iv
}

/// GCM IV (RFC 7714 §8.1, §9.1): `(0^16 || ssrc || index48) XOR salt`. For
/// SRTCP the index is the 31-bit SRTCP index (its top 17 bits are zero).
#[inline]
fn gcm_iv(salt: &[u8; 12], ssrc: u32, index: u64) -> Nonce {
    let mut iv = *salt;
    for (d, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[6..12].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= *s;
    }
    Nonce::assume_unique_for_key(iv)
}

/// HMAC-SHA1 over `data || trailer` (the ROC for SRTP, nothing for SRTCP).
#[inline]
fn hmac_sha1(mac: &HmacSha1, data: &[u8], trailer: &[u8]) -> [u8; 20] {
    let mut m = mac.clone();
    m.update(data);
    m.update(trailer);
    m.finalize().into_bytes().into()
}

/// RFC 3711 Appendix A: the ROC that makes `seq` closest to the highest index
/// seen. Returns the ROC to compute the tag with (wrapped into `u32`) and the
/// 48-bit index, or an error if the guess falls outside the index space.
#[inline]
fn estimate_index(top: Option<u64>, seq: u16) -> (u32, Result<u64, Error>) {
    let Some(top) = top else {
        return (0, Ok(u64::from(seq)));
    };
    let roc = (top >> 16) as i64;
    let s_l = top as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc - 1
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    if v < 0 {
        (u32::MAX, Err(Error::TooOld))
    } else if v > i64::from(u32::MAX) {
        (0, Err(Error::KeyExhausted))
    } else {
        (v as u32, Ok(((v as u64) << 16) | u64::from(seq)))
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn rtp_header_len(packet: &[u8]) -> Result<usize, Error> {
    strait_rtp::rtp::header_len(packet).map_err(|e| match e {
        strait_rtp::Error::TooShort => Error::TooShort,
        _ => Error::BadHeader,
    })
}

/// State of one SSRC.
pub(crate) struct Stream {
    pub(crate) ssrc: u32,
    /// SRTP: the top of the window is the highest index (ROC || seq).
    pub(crate) rtp: ReplayWindow,
    pub(crate) rtcp: ReplayWindow,
    /// Next SRTCP index to send.
    pub(crate) srtcp_next: u32,
}

impl Stream {
    fn new(window: u32) -> Self {
        Self {
            ssrc: 0,
            rtp: ReplayWindow::new(window),
            rtcp: ReplayWindow::new(window),
            srtcp_next: 0,
        }
    }

    fn reset(&mut self, ssrc: u32) {
        self.ssrc = ssrc;
        self.rtp.reset();
        self.rtcp.reset();
        self.srtcp_next = 0;
    }
}

/// SRTP and SRTCP for one direction of one session: the session keys derived
/// from one master key and salt, and the state of every SSRC seen.
///
/// Use one context to protect what we send and another (with the peer's
/// master key) to unprotect what we receive. All methods work in place on
/// the caller's buffer and never allocate.
pub struct SrtpContext {
    suite: Suite,
    config: Config,
    rtp: Cipher,
    rtcp: Cipher,
    /// `config.max_ssrcs` slots allocated up front; `streams[..active]` are
    /// in use.
    pub(crate) streams: Vec<Stream>,
    active: usize,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("config", &self.config)
            .field("ssrcs", &self.active)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derives the session keys (RFC 3711 §4.3, key derivation rate 0) and
    /// preallocates per-SSRC state.
    ///
    /// `master_key` must be [`Suite::master_key_len`] bytes and `master_salt`
    /// [`Suite::master_salt_len`] bytes, else [`Error::BadKeyLength`].
    pub fn new(
        suite: Suite,
        master_key: &[u8],
        master_salt: &[u8],
        config: Config,
    ) -> Result<Self, Error> {
        config.validate()?;
        let key: &[u8; 16] = master_key.try_into().map_err(|_| Error::BadKeyLength)?;
        if master_salt.len() != suite.master_salt_len() {
            return Err(Error::BadKeyLength);
        }
        let kdf = Kdf::new(key, master_salt);
        let rtp = Cipher::derive(suite, &kdf, false);
        let rtcp = Cipher::derive(suite, &kdf, true);
        Ok(Self::with_ciphers(suite, config, rtp, rtcp))
    }

    /// Like [`SrtpContext::new`] with the master key and salt concatenated
    /// (the SDES `inline:` key material).
    pub fn from_master(suite: Suite, key_and_salt: &[u8], config: Config) -> Result<Self, Error> {
        if key_and_salt.len() != suite.master_len() {
            return Err(Error::BadKeyLength);
        }
        let (key, salt) = key_and_salt.split_at(suite.master_key_len());
        Self::new(suite, key, salt, config)
    }

    pub(crate) fn with_ciphers(suite: Suite, config: Config, rtp: Cipher, rtcp: Cipher) -> Self {
        let streams = (0..config.max_ssrcs)
            .map(|_| Stream::new(config.replay_window))
            .collect();
        Self {
            suite,
            config,
            rtp,
            rtcp,
            streams,
            active: 0,
        }
    }

    /// The crypto suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of SSRCs currently tracked.
    pub fn ssrc_count(&self) -> usize {
        self.active
    }

    /// The current SRTP rollover counter of `ssrc` (the ROC of the highest
    /// index sent or received), if the SSRC is known.
    pub fn rtp_roc(&self, ssrc: u32) -> Option<u32> {
        let s = self.find(ssrc)?;
        Some((self.streams[s].rtp.top()? >> 16) as u32)
    }

    /// The highest SRTCP index received from `ssrc` (receiving context), if
    /// any packet from it was accepted.
    pub fn srtcp_highest_index(&self, ssrc: u32) -> Option<u32> {
        let s = self.find(ssrc)?;
        Some(self.streams[s].rtcp.top()? as u32)
    }

    /// The SRTCP index the next `protect_rtcp` for `ssrc` will use, if the
    /// SSRC is known.
    pub fn srtcp_next_index(&self, ssrc: u32) -> Option<u32> {
        let s = self.find(ssrc)?;
        Some(self.streams[s].srtcp_next)
    }

    /// Forgets `ssrc` (e.g. after an RTCP BYE), freeing its slot. Returns
    /// whether it was known.
    pub fn remove_ssrc(&mut self, ssrc: u32) -> bool {
        match self.find(ssrc) {
            Some(i) => {
                self.active -= 1;
                self.streams.swap(i, self.active);
                true
            }
            None => false,
        }
    }

    #[inline]
    fn find(&self, ssrc: u32) -> Option<usize> {
        self.streams
            .get(..self.active)?
            .iter()
            .position(|s| s.ssrc == ssrc)
    }

    fn insert(&mut self, ssrc: u32) -> Result<usize, Error> {
        let i = self.active;
        let slot = self.streams.get_mut(i).ok_or(Error::TooManySsrcs)?;
        slot.reset(ssrc);
        self.active += 1;
        Ok(i)
    }

    fn find_or_insert(&mut self, ssrc: u32) -> Result<usize, Error> {
        match self.find(ssrc) {
            Some(i) => Ok(i),
            None => self.insert(ssrc),
        }
    }

    /// Whether a packet from an unknown SSRC could be given a slot.
    fn has_room(&self) -> bool {
        self.active < self.streams.len()
    }

    /// Protects the RTP packet in `buf[..len]` in place: encrypts the payload
    /// and appends the tag. `buf` needs [`Suite::rtp_overhead`] spare bytes
    /// after `len`. Returns the SRTP packet length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let tag_len = self.suite.rtp_tag_len();
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall)?;
        let hlen = rtp_header_len(packet)?;
        let out_len = len
            .checked_add(tag_len)
            .filter(|&n| n <= buf.len())
            .ok_or(Error::BufferTooSmall)?;
        let seq = be16(buf, 2);
        let ssrc = be32(buf, 8);

        let slot = self.find_or_insert(ssrc)?;
        let stream = &mut self.streams[slot];
        let (roc, index) = estimate_index(stream.rtp.top(), seq);
        let index = index?;
        stream.rtp.accept(index);

        let (packet, trailer) = buf[..out_len].split_at_mut(len);
        match &self.rtp {
            Cipher::Cm { aes, salt, mac } => {
                ctr_xor(aes, cm_iv(salt, ssrc, index), &mut packet[hlen..]);
                let tag = hmac_sha1(mac, packet, &roc.to_be_bytes());
                trailer.copy_from_slice(&tag[..tag_len]);
            }
            Cipher::Gcm { key, salt } => {
                let (header, payload) = packet.split_at_mut(hlen);
                let tag = key
                    .seal_in_place_separate_tag(
                        gcm_iv(salt, ssrc, index),
                        Aad::from(&*header),
                        payload,
                    )
                    .map_err(|_| Error::BufferTooSmall)?;
                trailer.copy_from_slice(tag.as_ref());
            }
        }
        Ok(out_len)
    }

    /// Unprotects the SRTP packet that is the whole of `buf`, in place:
    /// authenticates, checks the replay window, decrypts. Returns the RTP
    /// packet length (`buf[..n]`; padding, if any, is still there).
    ///
    /// The SSRC's ROC, highest sequence number and replay window change only
    /// when the packet authenticates and is not a replay; a packet from a new
    /// SSRC takes a slot only then.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.suite.rtp_tag_len();
        let len = buf.len().checked_sub(tag_len).ok_or(Error::TooShort)?;
        let hlen = rtp_header_len(&buf[..len])?;
        let seq = be16(buf, 2);
        let ssrc = be32(buf, 8);

        let slot = self.find(ssrc);
        if slot.is_none() && !self.has_room() {
            return Err(Error::TooManySsrcs);
        }
        let window = slot.map(|s| &self.streams[s].rtp);
        let (roc, index) = estimate_index(window.and_then(ReplayWindow::top), seq);
        // The replay verdict is reported only once the packet authenticated.
        let verdict = index.and_then(|i| window.map_or(Ok(()), |w| w.check(i)).map(|()| i));

        let (packet, tag) = buf.split_at_mut(len);
        match &self.rtp {
            Cipher::Cm { aes, salt, mac } => {
                let expected = hmac_sha1(mac, packet, &roc.to_be_bytes());
                if !bool::from(expected[..tag_len].ct_eq(tag)) {
                    return Err(Error::AuthFailed);
                }
                let index = verdict?;
                ctr_xor(aes, cm_iv(salt, ssrc, index), &mut packet[hlen..]);
            }
            Cipher::Gcm { key, salt } => {
                let index_for_iv = (u64::from(roc) << 16) | u64::from(seq);
                let mut t = [0u8; GCM_TAG_LEN];
                t.copy_from_slice(tag);
                let (header, payload) = packet.split_at_mut(hlen);
                key.open_in_place_separate_tag(
                    gcm_iv(salt, ssrc, index_for_iv),
                    Aad::from(&*header),
                    Tag::from(t),
                    payload,
                    0..,
                )
                .map_err(|_| Error::AuthFailed)?;
            }
        }
        let index = verdict?;
        let slot = match slot {
            Some(s) => s,
            None => self.insert(ssrc)?,
        };
        self.streams[slot].rtp.accept(index);
        Ok(len)
    }

    /// Protects the RTCP (compound) packet in `buf[..len]` in place: encrypts
    /// everything after the first 8 bytes (unless
    /// [`Config::encrypt_srtcp`] is off), appends the E flag + SRTCP index
    /// and the tag. `buf` needs [`Suite::rtcp_overhead`] spare bytes after
    /// `len`. Returns the SRTCP packet length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let tag_len = self.suite.rtcp_tag_len();
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall)?;
        if packet.len() < RTCP_HEADER_LEN {
            return Err(Error::TooShort);
        }
        if packet[0] >> 6 != 2 {
            return Err(Error::BadHeader);
        }
        let out_len = len
            .checked_add(4 + tag_len)
            .filter(|&n| n <= buf.len())
            .ok_or(Error::BufferTooSmall)?;
        let ssrc = be32(buf, 4);

        let slot = self.find_or_insert(ssrc)?;
        let stream = &mut self.streams[slot];
        let index = stream.srtcp_next;
        if index > MAX_SRTCP_INDEX {
            return Err(Error::KeyExhausted);
        }
        stream.srtcp_next += 1;
        let encrypt = self.config.encrypt_srtcp;
        let word = if encrypt { index | E_FLAG } else { index }.to_be_bytes();

        let out = &mut buf[..out_len];
        match &self.rtcp {
            Cipher::Cm { aes, salt, mac } => {
                if encrypt {
                    ctr_xor(
                        aes,
                        cm_iv(salt, ssrc, u64::from(index)),
                        &mut out[RTCP_HEADER_LEN..len],
                    );
                }
                out[len..len + 4].copy_from_slice(&word);
                let (authed, tag) = out.split_at_mut(len + 4);
                let expected = hmac_sha1(mac, authed, &[]);
                tag.copy_from_slice(&expected[..tag_len]);
            }
            Cipher::Gcm { key, salt } => {
                let nonce = gcm_iv(salt, ssrc, u64::from(index));
                let tag = if encrypt {
                    // AAD = header || E || index (RFC 7714 §9.2).
                    let mut aad = [0u8; RTCP_HEADER_LEN + 4];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(&out[..RTCP_HEADER_LEN]);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                    key.seal_in_place_separate_tag(
                        nonce,
                        Aad::from(aad),
                        &mut out[RTCP_HEADER_LEN..len],
                    )
                } else {
                    // AAD = whole packet || E || index, nothing encrypted.
                    out[len..len + 4].copy_from_slice(&word);
                    key.seal_in_place_separate_tag(nonce, Aad::from(&out[..len + 4]), &mut [])
                }
                .map_err(|_| Error::BufferTooSmall)?;
                out[len..len + GCM_TAG_LEN].copy_from_slice(tag.as_ref());
                out[len + GCM_TAG_LEN..].copy_from_slice(&word);
            }
        }
        Ok(out_len)
    }

    /// Unprotects the SRTCP packet that is the whole of `buf`, in place.
    /// Returns the RTCP packet length. Encrypted and unencrypted (E = 0)
    /// packets are both accepted; the SRTCP replay window is separate from
    /// the SRTP one and changes only after authentication.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.suite.rtcp_tag_len();
        let len = buf.len();
        if len < RTCP_HEADER_LEN + 4 + tag_len {
            return Err(Error::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(Error::BadHeader);
        }
        let ssrc = be32(buf, 4);
        let rtcp_len = len - 4 - tag_len;
        // CM: packet | E+index | tag; GCM: packet | tag | E+index.
        let word_at = if self.suite.is_aead() {
            len - 4
        } else {
            rtcp_len
        };
        let word = be32(buf, word_at);
        let encrypted = word & E_FLAG != 0;
        let index = word & MAX_SRTCP_INDEX;

        let slot = self.find(ssrc);
        if slot.is_none() && !self.has_room() {
            return Err(Error::TooManySsrcs);
        }
        let verdict = slot.map_or(Ok(()), |s| self.streams[s].rtcp.check(u64::from(index)));

        match &self.rtcp {
            Cipher::Cm { aes, salt, mac } => {
                let (authed, tag) = buf.split_at_mut(rtcp_len + 4);
                let expected = hmac_sha1(mac, authed, &[]);
                if !bool::from(expected[..tag_len].ct_eq(tag)) {
                    return Err(Error::AuthFailed);
                }
                verdict?;
                if encrypted {
                    ctr_xor(
                        aes,
                        cm_iv(salt, ssrc, u64::from(index)),
                        &mut authed[RTCP_HEADER_LEN..rtcp_len],
                    );
                }
            }
            Cipher::Gcm { key, salt } => {
                let nonce = gcm_iv(salt, ssrc, u64::from(index));
                let mut t = [0u8; GCM_TAG_LEN];
                t.copy_from_slice(&buf[rtcp_len..rtcp_len + GCM_TAG_LEN]);
                let opened = if encrypted {
                    let mut aad = [0u8; RTCP_HEADER_LEN + 4];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word.to_be_bytes());
                    key.open_in_place_separate_tag(
                        nonce,
                        Aad::from(aad),
                        Tag::from(t),
                        &mut buf[RTCP_HEADER_LEN..rtcp_len],
                        0..,
                    )
                    .map(|_| ())
                } else {
                    // Make packet || E || index contiguous for the AAD (the
                    // tag it overwrites was copied out above).
                    buf[rtcp_len..rtcp_len + 4].copy_from_slice(&word.to_be_bytes());
                    key.open_in_place_separate_tag(
                        nonce,
                        Aad::from(&buf[..rtcp_len + 4]),
                        Tag::from(t),
                        &mut [],
                        0..,
                    )
                    .map(|_| ())
                };
                opened.map_err(|_| Error::AuthFailed)?;
                verdict?;
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => self.insert(ssrc)?,
        };
        self.streams[slot].rtcp.accept(u64::from(index));
        Ok(rtcp_len)
    }
}

#[cfg(test)]
mod tests;
