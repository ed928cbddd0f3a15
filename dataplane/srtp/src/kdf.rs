//! AES counter mode (RFC 3711 §4.1.1) and the AES-CM key derivation
//! function (RFC 3711 §4.3, key derivation rate 0).

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use aes::{Aes128Enc, Block};

/// AES-128 CTR with a 128-bit big-endian counter over a borrowed key
/// schedule: nothing is copied per packet.
type AesCtrCore<'a> = ctr::CtrCore<&'a Aes128Enc, ctr::flavors::Ctr128BE>;

/// XORs `data` with the AES-CTR keystream starting at counter block `iv`
/// (incremented as a 128-bit big-endian integer, wrapping).
#[inline]
pub(crate) fn ctr_xor(aes: &Aes128Enc, iv: [u8; 16], data: &mut [u8]) {
    let core = AesCtrCore::inner_iv_init(aes, &iv.into());
    if StreamCipherCoreWrapper::from_core(core)
        .try_apply_keystream(data)
        .is_err()
    {
        // The `ctr` crate refuses to wrap the 128-bit counter; RFC 3711
        // counts modulo 2^128. Only reachable with a salt of all ones.
        ctr_xor_wrapping(aes, iv, data);
    }
}

/// Blocks encrypted per call to the block cipher in the fallback.
const PAR_BLOCKS: usize = 8;

/// Plain CTR that wraps the counter modulo 2^128.
fn ctr_xor_wrapping(aes: &Aes128Enc, iv: [u8; 16], data: &mut [u8]) {
    let mut counter = u128::from_be_bytes(iv);
    let mut blocks = [Block::default(); PAR_BLOCKS];
    for chunk in data.chunks_mut(16 * PAR_BLOCKS) {
        let n = chunk.len().div_ceil(16);
        for b in blocks.iter_mut().take(n) {
            *b = Block::from(counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        aes.encrypt_blocks(&mut blocks[..n]);
        for (d, k) in chunk.chunks_mut(16).zip(blocks.iter()) {
            for (x, y) in d.iter_mut().zip(k.iter()) {
                *x ^= *y;
            }
        }
    }
}

/// SRTP key derivation labels (RFC 3711 §4.3.1, §4.3.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// A master key and salt, ready to derive session keys.
pub(crate) struct Kdf {
    aes: Aes128Enc,
    /// Master salt, zero-padded on the right to 14 bytes (the 12-byte GCM
    /// salt of RFC 7714 §11 is padded as libsrtp does).
    salt: [u8; 14],
}

impl Kdf {
    /// `key` must be 16 bytes and `salt` at most 14 (checked by the caller).
    pub(crate) fn new(key: &[u8; 16], salt: &[u8]) -> Self {
        let mut s = [0u8; 14];
        let n = salt.len().min(14);
        s[..n].copy_from_slice(&salt[..n]);
        Self {
            aes: Aes128Enc::new(key.into()),
            salt: s,
        }
    }

    /// Fills `out` with the session key for `label`: AES-CM keystream of the
    /// master key at IV = (master_salt XOR (label || 0^48)) * 2^16.
    pub(crate) fn derive(&self, label: Label, out: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        // key_id = label || r (48 bits, r = 0 when kdr = 0) is aligned with
        // the low 56 bits of the 112-bit salt: the label XORs into byte 7.
        iv[7] ^= label as u8;
        out.fill(0);
        ctr_xor(&self.aes, iv, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(char::is_whitespace, "")).expect("hex")
    }

    /// RFC 3711 Appendix B.2: AES-CM keystream for session key
    /// 2B7E...4F3C, session salt F0F1...FCFD, SSRC 0, index 0.
    #[test]
    fn rfc3711_b2_keystream() {
        let key: [u8; 16] = h("2B7E151628AED2A6ABF7158809CF4F3C")
            .try_into()
            .expect("16");
        let aes = Aes128Enc::new(&key.into());
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&h("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
        // Counter blocks 0x0000 ..= 0xFF01.
        let mut ks = vec![0u8; 16 * 0xFF02];
        ctr_xor(&aes, iv, &mut ks);
        let block = |i: usize| &ks[16 * i..16 * (i + 1)];
        assert_eq!(block(0), &h("E03EAD0935C95E80E166B16DD92B4EB4")[..]);
        assert_eq!(block(1), &h("D23513162B02D0F72A43A2FE4A5F97AB")[..]);
        assert_eq!(block(2), &h("41E95B3BB0A2E8DD477901E4FCA894C0")[..]);
        assert_eq!(block(0xFEFF), &h("EC8CDF7398607CB0F2D21675EA9EA1E4")[..]);
        assert_eq!(block(0xFF00), &h("362B7C3C6773516318A077D7FC5073AE")[..]);
        assert_eq!(block(0xFF01), &h("6A2CC3787889374FBEB4C81B17BA6C44")[..]);

        // Unaligned lengths produce a prefix of the same keystream.
        for len in [0, 1, 15, 17, 127, 128, 129, 200] {
            let mut part = vec![0u8; len];
            ctr_xor(&aes, iv, &mut part);
            assert_eq!(part, ks[..len]);
        }
    }

    #[test]
    fn ctr_paths_agree_and_wrap() {
        let aes = Aes128Enc::new(&[0x42u8; 16].into());
        for iv in [[0u8; 16], [0x5A; 16], [0xFF; 16], {
            let mut v = [0xFF; 16];
            v[15] = 0xF0;
            v
        }] {
            for len in [0usize, 1, 16, 100, 300, 1500] {
                let mut a = vec![0xA5u8; len];
                let mut b = a.clone();
                ctr_xor(&aes, iv, &mut a);
                ctr_xor_wrapping(&aes, iv, &mut b);
                assert_eq!(a, b, "iv {iv:02x?} len {len}");
            }
        }
        // The counter wraps from all ones to zero.
        let mut wrapped = [0u8; 32];
        ctr_xor(&aes, [0xFF; 16], &mut wrapped);
        let mut zero = [0u8; 16];
        ctr_xor(&aes, [0; 16], &mut zero);
        assert_eq!(wrapped[16..], zero);
    }

    /// RFC 3711 Appendix B.3: key derivation.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let key: [u8; 16] = h("E1F97A0D3E018BE0D64FA32C06DE4139")
            .try_into()
            .expect("16");
        let kdf = Kdf::new(&key, &h("0EC675AD498AFEEBB6960B3AABE6"));
        let mut enc = [0u8; 16];
        kdf.derive(Label::RtpEncryption, &mut enc);
        assert_eq!(enc[..], h("C61E7A93744F39EE10734AFE3FF7A087")[..]);
        let mut salt = [0u8; 14];
        kdf.derive(Label::RtpSalt, &mut salt);
        assert_eq!(salt[..], h("30CBBC08863D8C85D49DB34A9AE1")[..]);
        // The RFC lists 94 bytes of the auth keystream; check all of them,
        // the first 20 are the HMAC-SHA1 key.
        let mut auth = [0u8; 94];
        kdf.derive(Label::RtpAuth, &mut auth);
        assert_eq!(
            auth[..],
            h(
                "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
               E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
               6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
            )[..]
        );
    }
}
