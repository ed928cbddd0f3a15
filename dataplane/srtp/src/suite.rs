//! The supported crypto suites and their parameters.

use core::fmt;
use core::str::FromStr;

use crate::Error;

/// An SRTP protection profile / SDES crypto suite.
///
/// Names are the SDP `a=crypto` suite names (RFC 4568, RFC 7714 §14.1); ids
/// are the DTLS-SRTP protection-profile ids (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (SRTCP keeps
    /// an 80-bit tag, RFC 5764 §4.1.2).
    AesCm128HmacSha1_32,
    /// AES-128-GCM with a 128-bit tag (RFC 7714).
    AeadAes128Gcm,
}

impl Suite {
    /// All supported suites, in order of preference (GCM first: cheaper and
    /// stronger).
    pub const ALL: [Suite; 3] = [
        Suite::AeadAes128Gcm,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
    ];

    /// The SDP crypto-suite name, e.g. `"AES_CM_128_HMAC_SHA1_80"`.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// Looks a suite up by its SDP name (case-sensitive, as RFC 4568 defines
    /// the names).
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The DTLS-SRTP protection-profile id (`SRTP_AES128_CM_HMAC_SHA1_80` =
    /// 0x0001, `SRTP_AES128_CM_HMAC_SHA1_32` = 0x0002,
    /// `SRTP_AEAD_AES_128_GCM` = 0x0007).
    pub const fn dtls_profile_id(self) -> u16 {
        match self {
            Suite::AesCm128HmacSha1_80 => 0x0001,
            Suite::AesCm128HmacSha1_32 => 0x0002,
            Suite::AeadAes128Gcm => 0x0007,
        }
    }

    /// Looks a suite up by its DTLS-SRTP protection-profile id.
    pub fn from_dtls_profile_id(id: u16) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.dtls_profile_id() == id)
    }

    /// Whether this is an AEAD suite (no separate authentication key).
    pub const fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm)
    }

    /// Master key length in bytes (16 for all supported suites).
    pub const fn master_key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes: 14 for AES-CM, 12 for GCM (RFC 7714 §12).
    pub const fn master_salt_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => 14,
            Suite::AeadAes128Gcm => 12,
        }
    }

    /// Length of the concatenated master key and salt (the SDES `inline:` key
    /// material, 30 or 28 bytes).
    pub const fn master_len(self) -> usize {
        self.master_key_len() + self.master_salt_len()
    }

    /// Length of the DTLS-SRTP exported keying material (RFC 5764 §4.2):
    /// two master keys and two master salts.
    pub const fn dtls_keying_material_len(self) -> usize {
        2 * self.master_len()
    }

    /// Splits DTLS-SRTP exported keying material (`client_key | server_key |
    /// client_salt | server_salt`, RFC 5764 §4.2). Returns `None` if the
    /// length is not [`Suite::dtls_keying_material_len`].
    pub fn split_dtls_keying_material(self, material: &[u8]) -> Option<DtlsSrtpKeys<'_>> {
        if material.len() != self.dtls_keying_material_len() {
            return None;
        }
        let (client_key, rest) = material.split_at(self.master_key_len());
        let (server_key, rest) = rest.split_at(self.master_key_len());
        let (client_salt, server_salt) = rest.split_at(self.master_salt_len());
        Some(DtlsSrtpKeys {
            client_key,
            client_salt,
            server_key,
            server_salt,
        })
    }

    /// Authentication tag length appended to SRTP packets: 10, 4 or 16.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
            Suite::AeadAes128Gcm => 16,
        }
    }

    /// Authentication tag length of SRTCP packets: 10, 10 or 16.
    pub const fn rtcp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => 10,
            Suite::AeadAes128Gcm => 16,
        }
    }

    /// Bytes `protect_rtp` appends (the tag): the spare room the buffer
    /// needs.
    pub const fn rtp_overhead(self) -> usize {
        self.rtp_tag_len()
    }

    /// Bytes `protect_rtcp` appends (tag plus the 4-byte E/index word).
    pub const fn rtcp_overhead(self) -> usize {
        self.rtcp_tag_len() + 4
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Suite {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Suite::from_name(s).ok_or(Error::UnknownSuite)
    }
}

impl TryFrom<u16> for Suite {
    type Error = Error;

    /// Converts a DTLS-SRTP protection-profile id.
    fn try_from(id: u16) -> Result<Self, Self::Error> {
        Suite::from_dtls_profile_id(id).ok_or(Error::UnknownSuite)
    }
}

/// The four parts of DTLS-SRTP keying material, borrowed from the exporter
/// output. The DTLS client sends with the client key and salt; the server
/// with the server ones.
#[derive(Clone, Copy)]
pub struct DtlsSrtpKeys<'a> {
    /// Master key the DTLS client protects with.
    pub client_key: &'a [u8],
    /// Master salt the DTLS client protects with.
    pub client_salt: &'a [u8],
    /// Master key the DTLS server protects with.
    pub server_key: &'a [u8],
    /// Master salt the DTLS server protects with.
    pub server_salt: &'a [u8],
}

impl fmt::Debug for DtlsSrtpKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DtlsSrtpKeys { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(s.to_string().parse::<Suite>(), Ok(s));
            assert_eq!(Suite::try_from(s.dtls_profile_id()), Ok(s));
        }
        assert_eq!(
            "AES_CM_128_HMAC_SHA1_80".parse(),
            Ok(Suite::AesCm128HmacSha1_80)
        );
        assert_eq!(
            "AES_CM_128_HMAC_SHA1_32".parse(),
            Ok(Suite::AesCm128HmacSha1_32)
        );
        assert_eq!("AEAD_AES_128_GCM".parse(), Ok(Suite::AeadAes128Gcm));
        assert_eq!(
            "aes_cm_128_hmac_sha1_80".parse::<Suite>(),
            Err(Error::UnknownSuite)
        );
        assert_eq!(
            "AEAD_AES_256_GCM".parse::<Suite>(),
            Err(Error::UnknownSuite)
        );
        assert_eq!(Suite::try_from(0x0008), Err(Error::UnknownSuite));
        assert_eq!(Suite::try_from(0x0000), Err(Error::UnknownSuite));
    }

    #[test]
    fn lengths() {
        assert_eq!(Suite::AesCm128HmacSha1_80.dtls_profile_id(), 1);
        assert_eq!(Suite::AesCm128HmacSha1_32.dtls_profile_id(), 2);
        assert_eq!(Suite::AeadAes128Gcm.dtls_profile_id(), 7);
        assert_eq!(Suite::AesCm128HmacSha1_80.master_len(), 30);
        assert_eq!(Suite::AeadAes128Gcm.master_len(), 28);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtp_overhead(), 4);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtcp_overhead(), 14);
        assert_eq!(Suite::AeadAes128Gcm.rtcp_overhead(), 20);
        assert_eq!(Suite::AeadAes128Gcm.dtls_keying_material_len(), 56);
    }

    #[test]
    fn split_dtls() {
        let m: Vec<u8> = (0..60).collect();
        let k = Suite::AesCm128HmacSha1_80
            .split_dtls_keying_material(&m)
            .expect("60 bytes");
        assert_eq!(k.client_key, &m[0..16]);
        assert_eq!(k.server_key, &m[16..32]);
        assert_eq!(k.client_salt, &m[32..46]);
        assert_eq!(k.server_salt, &m[46..60]);
        assert!(Suite::AeadAes128Gcm
            .split_dtls_keying_material(&m)
            .is_none());
        let k = Suite::AeadAes128Gcm
            .split_dtls_keying_material(&m[..56])
            .expect("56 bytes");
        assert_eq!(k.server_salt, &m[44..56]);
    }
}
