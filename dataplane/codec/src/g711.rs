//! ITU-T G.711 companding: mu-law (PCMU) and A-law (PCMA).
//!
//! Linear samples are 16-bit (`i16`); G.711 codes are one byte each. The
//! decoders are 256-entry tables built at compile time. The encoders are
//! written once as bit arithmetic ([`ulaw_encode`], [`alaw_encode`]: a
//! leading-zero count finds the segment) and tabulated at compile time for
//! the frame functions: mu-law depends only on the top 14 bits of a sample
//! and A-law on the top 12, so the tables have 16384 and 4096 entries and
//! stay in L1 cache.
//!
//! Like the ITU-T G.191 reference, negative samples are quantised from
//! their one's complement (`-x - 1`), so both signs split symmetrically
//! around -0.5. The encoders truncate to the quantisation interval and the
//! decoders return the middle of that interval, so `decode(encode(x))` is
//! within half a step of `x` (mu-law also clips beyond ±32635); and
//! `encode(decode(c)) == c` for every code, except mu-law 0x7F, the
//! "negative zero", which decodes to 0 like 0xFF and re-encodes as 0xFF.
//!
//! [`ULAW_TO_ALAW`] and [`ALAW_TO_ULAW`] transcode PCMU <-> PCMA byte for
//! byte through the linear domain (decode, then encode), for legs that only
//! differ in the G.711 law.

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// mu-law (PCMU, static RTP payload type 0).
    Ulaw,
    /// A-law (PCMA, static RTP payload type 8).
    Alaw,
}

impl Law {
    /// The static RTP payload type of this law (RFC 3551 §6).
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// Encodes one linear sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ULAW_ENCODE[ulaw_index(sample)],
            Law::Alaw => ALAW_ENCODE[alaw_index(sample)],
        }
    }

    /// Decodes one code.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ULAW_DECODE[usize::from(code)],
            Law::Alaw => ALAW_DECODE[usize::from(code)],
        }
    }

    /// Decodes `min(input.len(), out.len())` codes; returns that count.
    pub fn decode_frame(self, input: &[u8], out: &mut [i16]) -> usize {
        match self {
            Law::Ulaw => decode_ulaw(input, out),
            Law::Alaw => decode_alaw(input, out),
        }
    }

    /// Encodes `min(input.len(), out.len())` samples; returns that count.
    pub fn encode_frame(self, input: &[i16], out: &mut [u8]) -> usize {
        match self {
            Law::Ulaw => encode_ulaw(input, out),
            Law::Alaw => encode_alaw(input, out),
        }
    }
}

/// mu-law bias added to the magnitude before finding the segment.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude mu-law can represent before the bias would overflow 15
/// bits; larger inputs are clipped to it.
const ULAW_CLIP: i32 = 32635;

const fn ulaw_decode_const(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_const(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode_const(i as u8)
        } else {
            ulaw_decode_const(i as u8)
        };
        i += 1;
    }
    t
}

/// mu-law code -> linear sample.
pub static ULAW_DECODE: [i16; 256] = build_table(false);
/// A-law code -> linear sample.
pub static ALAW_DECODE: [i16; 256] = build_table(true);

/// Encodes one linear sample as mu-law.
#[inline]
pub const fn ulaw_encode(sample: i16) -> u8 {
    let x = sample as i32;
    // The sign bit is 1 for positive values after the final inversion.
    let (mask, magnitude): (u8, i32) = if x < 0 { (0x7F, -x - 1) } else { (0xFF, x) };
    let magnitude = if magnitude > ULAW_CLIP {
        ULAW_CLIP
    } else {
        magnitude
    } + ULAW_BIAS;
    // magnitude is in 0x84..=0x7FFF: its top set bit is bit 7..=14.
    let top = 31 - magnitude.leading_zeros();
    let exponent = top - 7;
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    (((exponent << 4) as i32 | mantissa) as u8) ^ mask
}

/// Encodes one linear sample as A-law.
#[inline]
pub const fn alaw_encode(sample: i16) -> u8 {
    let x = sample as i32;
    // Negative values use the one's complement so both signs quantise
    // symmetrically around -0.5 (A-law has no code for zero).
    let (mask, magnitude): (u8, i32) = if x < 0 { (0x55, -x - 1) } else { (0xD5, x) };
    let code = if magnitude < 0x100 {
        magnitude >> 4
    } else {
        // magnitude is in 0x100..=0x7FFF: top set bit 8..=14 -> segment 1..=7.
        let segment = (31 - magnitude.leading_zeros()) as i32 - 7;
        (segment << 4) | ((magnitude >> (segment + 3)) & 0x0F)
    };
    (code as u8) ^ mask
}

/// Index of a sample in [`ULAW_ENCODE`]: its top 14 bits, offset to 0.
#[inline]
const fn ulaw_index(sample: i16) -> usize {
    ((sample >> 2) as i32 + 0x2000) as usize
}

/// Index of a sample in [`ALAW_ENCODE`]: its top 12 bits, offset to 0.
#[inline]
const fn alaw_index(sample: i16) -> usize {
    ((sample >> 4) as i32 + 0x800) as usize
}

const fn build_encode<const N: usize>(alaw: bool) -> [u8; N] {
    let mut t = [0u8; N];
    let mut i = 0;
    while i < N {
        t[i] = if alaw {
            alaw_encode(((i as i32 - 0x800) << 4) as i16)
        } else {
            ulaw_encode(((i as i32 - 0x2000) << 2) as i16)
        };
        i += 1;
    }
    t
}

/// Linear sample (top 14 bits, see [`ulaw_encode`]) -> mu-law code.
static ULAW_ENCODE: [u8; 0x4000] = build_encode(false);
/// Linear sample (top 12 bits, see [`alaw_encode`]) -> A-law code.
static ALAW_ENCODE: [u8; 0x1000] = build_encode(true);

/// Decodes mu-law codes; converts `min(input.len(), out.len())` and returns
/// that count.
pub fn decode_ulaw(input: &[u8], out: &mut [i16]) -> usize {
    decode_with(&ULAW_DECODE, input, out)
}

/// Decodes A-law codes; converts `min(input.len(), out.len())` and returns
/// that count.
pub fn decode_alaw(input: &[u8], out: &mut [i16]) -> usize {
    decode_with(&ALAW_DECODE, input, out)
}

fn decode_with(table: &[i16; 256], input: &[u8], out: &mut [i16]) -> usize {
    let n = input.len().min(out.len());
    for (o, &c) in out.iter_mut().zip(input) {
        *o = table[usize::from(c)];
    }
    n
}

/// Encodes linear samples as mu-law; converts `min(input.len(), out.len())`
/// and returns that count.
pub fn encode_ulaw(input: &[i16], out: &mut [u8]) -> usize {
    let n = input.len().min(out.len());
    for (o, &s) in out.iter_mut().zip(input) {
        *o = ULAW_ENCODE[ulaw_index(s)];
    }
    n
}

/// Encodes linear samples as A-law; converts `min(input.len(), out.len())`
/// and returns that count.
pub fn encode_alaw(input: &[i16], out: &mut [u8]) -> usize {
    let n = input.len().min(out.len());
    for (o, &s) in out.iter_mut().zip(input) {
        *o = ALAW_ENCODE[alaw_index(s)];
    }
    n
}

const fn build_transcode(ulaw_to_alaw: bool) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if ulaw_to_alaw {
            alaw_encode(ulaw_decode_const(i as u8))
        } else {
            ulaw_encode(alaw_decode_const(i as u8))
        };
        i += 1;
    }
    t
}

/// mu-law code -> A-law code (through the linear value).
pub static ULAW_TO_ALAW: [u8; 256] = build_transcode(true);
/// A-law code -> mu-law code (through the linear value).
pub static ALAW_TO_ULAW: [u8; 256] = build_transcode(false);

/// Rewrites a PCMU payload as PCMA in place.
pub fn ulaw_to_alaw_in_place(payload: &mut [u8]) {
    for b in payload {
        *b = ULAW_TO_ALAW[usize::from(*b)];
    }
}

/// Rewrites a PCMA payload as PCMU in place.
pub fn alaw_to_ulaw_in_place(payload: &mut [u8]) {
    for b in payload {
        *b = ALAW_TO_ULAW[usize::from(*b)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        assert_eq!(ULAW_DECODE[0xFF], 0);
        assert_eq!(ULAW_DECODE[0x7F], 0);
        assert_eq!(ULAW_DECODE[0x00], -32124);
        assert_eq!(ULAW_DECODE[0x80], 32124);
        assert_eq!(ULAW_DECODE[0xFE], 8);
        assert_eq!(ULAW_DECODE[0x7E], -8);
        assert_eq!(ALAW_DECODE[0xD5], 8);
        assert_eq!(ALAW_DECODE[0x55], -8);
        assert_eq!(ALAW_DECODE[0xAA], 32256);
        assert_eq!(ALAW_DECODE[0x2A], -32256);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn encode_tables_match_the_arithmetic_for_every_sample() {
        let mut u = [0u8; 1];
        let mut a = [0u8; 1];
        for x in i16::MIN..=i16::MAX {
            encode_ulaw(&[x], &mut u);
            encode_alaw(&[x], &mut a);
            assert_eq!(u[0], ulaw_encode(x), "ulaw {x}");
            assert_eq!(a[0], alaw_encode(x), "alaw {x}");
            assert_eq!(Law::Ulaw.encode(x), u[0]);
            assert_eq!(Law::Alaw.encode(x), a[0]);
        }
    }

    #[test]
    fn negative_samples_quantise_like_their_ones_complement() {
        for x in 0..=i16::MAX {
            let n = !x; // -x - 1
            assert_eq!(ulaw_encode(n), ulaw_encode(x) & 0x7F, "ulaw {x}");
            assert_eq!(alaw_encode(n), alaw_encode(x) ^ 0x80, "alaw {x}");
        }
    }

    #[test]
    fn encode_decode_is_identity_on_codes() {
        for c in 0..=255u8 {
            let expect = if c == 0x7F { 0xFF } else { c };
            assert_eq!(
                ulaw_encode(ULAW_DECODE[usize::from(c)]),
                expect,
                "ulaw {c:#04x}"
            );
            assert_eq!(alaw_encode(ALAW_DECODE[usize::from(c)]), c, "alaw {c:#04x}");
        }
    }

    #[test]
    fn decoded_values_are_distinct_except_ulaw_zero() {
        let mut u: Vec<i16> = ULAW_DECODE.to_vec();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), 255, "only 0x7F and 0xFF collide");
        let mut a: Vec<i16> = ALAW_DECODE.to_vec();
        a.sort_unstable();
        a.dedup();
        assert_eq!(a.len(), 256);
    }

    #[test]
    fn quantisation_is_monotonic() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut prev = i16::MIN;
            for x in i16::MIN..=i16::MAX {
                let y = law.decode(law.encode(x));
                assert!(y >= prev, "{law:?}: q({x}) = {y} < {prev}");
                prev = y;
            }
        }
    }

    /// Half the quantisation step of the segment a code belongs to.
    fn half_step(law: Law, code: u8) -> i32 {
        match law {
            Law::Ulaw => 4 << ((!code >> 4) & 7),
            Law::Alaw => {
                let seg = ((code ^ 0x55) >> 4) & 7;
                8 << seg.saturating_sub(1)
            }
        }
    }

    #[test]
    fn decode_encode_error_is_within_half_a_step() {
        for law in [Law::Ulaw, Law::Alaw] {
            let max_out = i32::from(law.decode(law.encode(i16::MAX)));
            let mut worst = 0;
            for x in i16::MIN..=i16::MAX {
                let c = law.encode(x);
                let y = i32::from(law.decode(c));
                let x = i32::from(x);
                let err = (y - x).abs();
                // Beyond the last code the error is the clipping distance.
                let clipped = x.abs() > max_out && y.abs() == max_out;
                assert!(
                    err <= half_step(law, c) || clipped,
                    "{law:?}: x={x} code={c:#04x} y={y}"
                );
                if !clipped {
                    worst = worst.max(err);
                }
            }
            assert_eq!(worst, 512, "{law:?}: top segment half step");
        }
        // Small signals are fine-grained.
        assert!((i32::from(ULAW_DECODE[usize::from(ulaw_encode(100))]) - 100).abs() <= 4);
        assert!((i32::from(ALAW_DECODE[usize::from(alaw_encode(-100))]) + 100).abs() <= 8);
    }

    #[test]
    fn frame_functions_convert_the_common_length() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 397 - 30000) as i16).collect();
        let mut codes = [0u8; 160];
        assert_eq!(encode_ulaw(&pcm, &mut codes), 160);
        let mut back = [0i16; 200];
        assert_eq!(decode_ulaw(&codes, &mut back), 160);
        for (i, (&a, &b)) in pcm.iter().zip(&back).enumerate() {
            assert_eq!(ulaw_encode(b), ulaw_encode(a), "sample {i}");
        }
        assert_eq!(encode_alaw(&pcm[..10], &mut codes), 10);
        assert_eq!(decode_alaw(&codes[..5], &mut back), 5);
        assert_eq!(back[0], ALAW_DECODE[usize::from(alaw_encode(pcm[0]))]);
        assert_eq!(Law::Alaw.encode_frame(&pcm, &mut codes[..3]), 3);
        assert_eq!(Law::Ulaw.decode_frame(&[], &mut back), 0);
    }

    #[test]
    fn law_transcode_tables_match_the_linear_path() {
        for c in 0..=255u8 {
            let a = ULAW_TO_ALAW[usize::from(c)];
            assert_eq!(a, alaw_encode(ULAW_DECODE[usize::from(c)]));
            let u = ALAW_TO_ULAW[usize::from(c)];
            assert_eq!(u, ulaw_encode(ALAW_DECODE[usize::from(c)]));
            // The A-law value stays within half an A-law step of the original.
            let orig = i32::from(ULAW_DECODE[usize::from(c)]);
            let via_a = i32::from(ALAW_DECODE[usize::from(a)]);
            assert!((orig - via_a).abs() <= half_step(Law::Alaw, a), "{c:#04x}");
        }
        // Silence maps to silence-ish and the extremes to the extremes.
        assert_eq!(ULAW_TO_ALAW[0xFF], 0xD5);
        assert_eq!(ALAW_TO_ULAW[0xD5], 0xFE); // +8 -> mu-law +8
        assert_eq!(ULAW_TO_ALAW[0x80], 0xAA);
        let mut p = [0xFFu8, 0x80, 0x00];
        ulaw_to_alaw_in_place(&mut p);
        assert_eq!(p, [0xD5, 0xAA, 0x2A]);
        alaw_to_ulaw_in_place(&mut p);
        assert_eq!(p, [0xFE, 0x80, 0x00]);
    }
}
