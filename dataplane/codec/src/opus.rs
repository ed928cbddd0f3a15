//! Opus at 8 kHz mono through libopus (the `opus` crate, which links a
//! bundled libopus statically; building it needs `cmake` and a C compiler).
//!
//! Both codec directions run at the legacy leg's 8 kHz sample rate: libopus
//! accepts 8 kHz input and produces 8 kHz output natively, so no resampler
//! is needed. (The RTP clock of Opus is still 48 kHz; that mapping is the
//! transcoder's job.) At 8 kHz the encoder codes narrowband SILK, which is
//! what carries in-band FEC (LBRR).
//!
//! This module has no `unsafe`: the `opus` crate owns the FFI.

use crate::ConfigError;
use crate::Error;

/// Sample rate of both codecs.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 160;
/// Samples in the longest Opus packet (120 ms) at [`SAMPLE_RATE`].
pub const MAX_PACKET_SAMPLES: usize = 960;
/// Samples in 2.5 ms, the granularity of Opus frame sizes.
pub const GRANULE_SAMPLES: usize = 20;
/// Largest encoded size of one Opus frame (RFC 6716 §3.4, R2).
pub const MAX_FRAME_BYTES: usize = 1275;

/// Opus encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Computational complexity, 0..=10. Default 5 (DESIGN.md §3: about
    /// 20/57/76 µs per 20 ms frame at 0/5/10 on the target machines).
    pub complexity: u8,
    /// Target bitrate in bit/s, 6000..=510000. Default 24000: narrowband
    /// speech from 64 kbit/s G.711 sounds fine from about 12000, but libopus
    /// (1.6) only adds narrowband FEC above about 19000 (measured: none at
    /// 18000, every frame at 20000).
    pub bitrate: u32,
    /// Allow in-band FEC (SILK LBRR) so the browser can rebuild a lost frame
    /// from the next packet. Default on: browsers signal `useinbandfec=1`.
    /// libopus only codes it while [`expected_loss_percent`] is non-zero
    /// and the bitrate is high enough (see [`bitrate`]), and then it costs
    /// about 40 % more encoder time (measured at complexity 5).
    ///
    /// [`bitrate`]: Self::bitrate
    /// [`expected_loss_percent`]: Self::expected_loss_percent
    pub inband_fec: bool,
    /// Expected packet loss in percent, 0..=100; steers how much FEC is
    /// spent. Default 0, so FEC costs nothing until loss is seen: feed the
    /// browser's RTCP receiver reports (fraction lost) into
    /// [`Encoder::set_expected_loss_percent`] at run time.
    pub expected_loss_percent: u8,
    /// Discontinuous transmission. Default off.
    pub dtx: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            complexity: 5,
            bitrate: 24_000,
            inband_fec: true,
            expected_loss_percent: 0,
            dtx: false,
        }
    }
}

impl EncoderConfig {
    /// Checks the ranges without touching libopus.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.complexity > 10 {
            return Err(ConfigError::Complexity(self.complexity));
        }
        if !(6_000..=510_000).contains(&self.bitrate) {
            return Err(ConfigError::Bitrate(self.bitrate));
        }
        if self.expected_loss_percent > 100 {
            return Err(ConfigError::LossPercent(self.expected_loss_percent));
        }
        Ok(())
    }
}

fn cfg_err(e: ::opus::Error) -> ConfigError {
    ConfigError::Opus(e.code() as i32)
}

/// An 8 kHz mono Opus encoder (VoIP application, voice signal).
#[derive(Debug)]
pub struct Encoder {
    inner: ::opus::Encoder,
}

impl Encoder {
    /// Creates and configures an encoder.
    pub fn new(cfg: &EncoderConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut inner = ::opus::Encoder::new(
            SAMPLE_RATE,
            ::opus::Channels::Mono,
            ::opus::Application::Voip,
        )
        .map_err(cfg_err)?;
        inner
            .set_complexity(i32::from(cfg.complexity))
            .map_err(cfg_err)?;
        inner
            .set_bitrate(::opus::Bitrate::Bits(
                i32::try_from(cfg.bitrate).map_err(|_| ConfigError::Bitrate(cfg.bitrate))?,
            ))
            .map_err(cfg_err)?;
        inner.set_signal(::opus::Signal::Voice).map_err(cfg_err)?;
        inner.set_inband_fec(cfg.inband_fec).map_err(cfg_err)?;
        inner
            .set_packet_loss_perc(i32::from(cfg.expected_loss_percent))
            .map_err(cfg_err)?;
        inner.set_dtx(cfg.dtx).map_err(cfg_err)?;
        Ok(Self { inner })
    }

    /// Encodes one 20 ms frame into `out` (at most [`MAX_FRAME_BYTES`] of it
    /// are used; a shorter `out` caps the frame's size) and returns the
    /// encoded length.
    pub fn encode(&mut self, pcm: &[i16; FRAME_SAMPLES], out: &mut [u8]) -> Result<usize, Error> {
        let n = out.len().min(MAX_FRAME_BYTES);
        self.inner
            .encode(pcm, &mut out[..n])
            .map_err(|_| Error::Encode)
    }

    /// Updates the expected packet loss (e.g. from RTCP receiver reports).
    pub fn set_expected_loss_percent(&mut self, percent: u8) -> Result<(), ConfigError> {
        if percent > 100 {
            return Err(ConfigError::LossPercent(percent));
        }
        self.inner
            .set_packet_loss_perc(i32::from(percent))
            .map_err(cfg_err)
    }

    /// Updates the target bitrate.
    pub fn set_bitrate(&mut self, bitrate: u32) -> Result<(), ConfigError> {
        if !(6_000..=510_000).contains(&bitrate) {
            return Err(ConfigError::Bitrate(bitrate));
        }
        let bits = i32::try_from(bitrate).map_err(|_| ConfigError::Bitrate(bitrate))?;
        self.inner
            .set_bitrate(::opus::Bitrate::Bits(bits))
            .map_err(cfg_err)
    }
}

/// An 8 kHz mono Opus decoder (stereo packets are down-mixed by libopus).
#[derive(Debug)]
pub struct Decoder {
    inner: ::opus::Decoder,
}

impl Decoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self, ConfigError> {
        let inner = ::opus::Decoder::new(SAMPLE_RATE, ::opus::Channels::Mono).map_err(cfg_err)?;
        Ok(Self { inner })
    }

    /// Decodes `packet` into `out` and returns the number of samples. `out`
    /// must hold the packet's duration ([`packet_samples`]).
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, Error> {
        if packet.is_empty() {
            return Err(Error::BadPayload);
        }
        self.inner
            .decode(packet, out, false)
            .map_err(|_| Error::Decode)
    }

    /// Conceals `out.len()` missing samples (a multiple of
    /// [`GRANULE_SAMPLES`]) using the in-band FEC of `next`, the packet that
    /// followed the loss. libopus runs PLC for all but the last frame's worth
    /// of the gap and rebuilds that last frame from the FEC data (or also
    /// with PLC when `next` carries none, see [`packet_has_fec`]).
    pub fn decode_fec(&mut self, next: &[u8], out: &mut [i16]) -> Result<usize, Error> {
        if next.is_empty() {
            return Err(Error::BadPayload);
        }
        self.inner
            .decode(next, out, true)
            .map_err(|_| Error::Decode)
    }

    /// Packet loss concealment for `out.len()` samples (a multiple of
    /// [`GRANULE_SAMPLES`]).
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, Error> {
        self.inner
            .decode(&[], out, false)
            .map_err(|_| Error::Decode)
    }

    /// Resets the decoder to its initial state (a new input stream).
    pub fn reset(&mut self) -> Result<(), Error> {
        self.inner.reset_state().map_err(|_| Error::Decode)
    }
}

/// The duration of an Opus packet in samples at 8 kHz, or `None` when its
/// framing is invalid.
pub fn packet_samples(packet: &[u8]) -> Option<usize> {
    if packet.is_empty() {
        return None;
    }
    ::opus::packet::get_nb_samples(packet, SAMPLE_RATE).ok()
}

/// The duration of one frame of an Opus packet in samples at 8 kHz (from the
/// TOC byte), or `None` for an empty packet.
pub fn frame_samples(packet: &[u8]) -> Option<usize> {
    let &toc = packet.first()?;
    let config = toc >> 3;
    // Durations in units of 2.5 ms (RFC 6716 §3.1, Table 2).
    let granules: usize = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config & 3)],
        12..=15 => [4, 8][usize::from(config & 1)],
        _ => [1, 2, 4, 8][usize::from(config & 3)],
    };
    Some(granules * GRANULE_SAMPLES)
}

/// Reads an RFC 6716 §3.2.1 frame length; returns (length, bytes used).
fn frame_len(b: &[u8]) -> Option<(usize, usize)> {
    let &b0 = b.first()?;
    if b0 < 252 {
        Some((usize::from(b0), 1))
    } else {
        let &b1 = b.get(1)?;
        Some((usize::from(b1) * 4 + usize::from(b0), 2))
    }
}

/// The compressed data of the first frame of an Opus packet (RFC 6716
/// §3.2), or `None` when the framing is invalid.
fn first_frame(packet: &[u8]) -> Option<&[u8]> {
    let (&toc, rest) = packet.split_first()?;
    match toc & 0x03 {
        // One frame.
        0 => Some(rest),
        // Two frames of equal size.
        1 => (rest.len() % 2 == 0).then(|| &rest[..rest.len() / 2]),
        // Two frames, the first one's length coded.
        2 => {
            let (len, used) = frame_len(rest)?;
            rest.get(used..used.checked_add(len)?)
        }
        // Arbitrary number of frames, optional padding, CBR or VBR.
        _ => {
            let (&count, mut rest) = rest.split_first()?;
            let vbr = count & 0x80 != 0;
            let frames = usize::from(count & 0x3F);
            if frames == 0 {
                return None;
            }
            let mut padding = 0usize;
            if count & 0x40 != 0 {
                loop {
                    let (&p, r) = rest.split_first()?;
                    rest = r;
                    padding += if p == 255 { 254 } else { usize::from(p) };
                    if p != 255 {
                        break;
                    }
                }
            }
            let data = rest.get(..rest.len().checked_sub(padding)?)?;
            if vbr {
                let mut at = 0;
                let mut first_len = 0;
                for i in 0..frames - 1 {
                    let (len, used) = frame_len(data.get(at..)?)?;
                    if i == 0 {
                        first_len = len;
                    }
                    at += used;
                }
                if frames == 1 {
                    first_len = data.len();
                }
                data.get(at..at.checked_add(first_len)?)
            } else {
                (data.len() % frames == 0).then(|| &data[..data.len() / frames])
            }
        }
    }
}

/// True when an Opus packet carries in-band FEC (SILK LBRR data) for the
/// packet before it.
///
/// The LBRR flag is one of the first range-coded binary symbols of a SILK
/// frame (RFC 6716 §4.2.3: one VAD flag per 20 ms SILK frame, then the LBRR
/// flag, per channel). Those symbols have probability 1/2, so they are plain
/// bits at the top of the first byte of the first Opus frame. CELT-only
/// packets never carry FEC.
pub fn packet_has_fec(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    if config >= 16 {
        return false;
    }
    // SILK frames per Opus frame: 1 for 10 and 20 ms, else 2 or 3.
    let silk_frames = match frame_samples(packet) {
        Some(n) if n > FRAME_SAMPLES => n / FRAME_SAMPLES,
        _ => 1,
    };
    let Some(&b) = first_frame(packet).and_then(|f| f.first()) else {
        return false;
    };
    let mid = (b >> (7 - silk_frames)) & 1 != 0;
    let stereo = toc & 0x04 != 0;
    let side = stereo && (b >> (6 - 2 * silk_frames)) & 1 != 0;
    mid || side
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, offset: usize) -> [i16; FRAME_SAMPLES] {
        let mut f = [0i16; FRAME_SAMPLES];
        for (i, s) in f.iter_mut().enumerate() {
            let t = (offset * FRAME_SAMPLES + i) as f64 / f64::from(SAMPLE_RATE);
            *s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 1250.0 * t * (1.0 + n as f64)).sin())
                as i16;
        }
        f
    }

    #[test]
    fn config_ranges_are_checked() {
        assert!(EncoderConfig::default().validate().is_ok());
        let bad = |f: fn(&mut EncoderConfig)| {
            let mut c = EncoderConfig::default();
            f(&mut c);
            Encoder::new(&c).err()
        };
        assert_eq!(
            bad(|c| c.complexity = 11),
            Some(ConfigError::Complexity(11))
        );
        assert_eq!(bad(|c| c.bitrate = 5999), Some(ConfigError::Bitrate(5999)));
        assert_eq!(
            bad(|c| c.expected_loss_percent = 101),
            Some(ConfigError::LossPercent(101))
        );
        let mut e = Encoder::new(&EncoderConfig::default()).unwrap();
        assert!(e.set_expected_loss_percent(101).is_err());
        assert!(e.set_expected_loss_percent(20).is_ok());
        assert!(e.set_bitrate(1_000_000).is_err());
        assert!(e.set_bitrate(24_000).is_ok());
    }

    #[test]
    fn encode_decode_20ms_at_8khz() {
        let mut e = Encoder::new(&EncoderConfig::default()).unwrap();
        let mut d = Decoder::new().unwrap();
        let mut pkt = [0u8; MAX_FRAME_BYTES];
        let mut pcm = [0i16; MAX_PACKET_SAMPLES];
        for k in 0..10 {
            let n = e.encode(&tone(0, k), &mut pkt).unwrap();
            assert!(n > 2 && n < 200, "{n} bytes at 24 kbit/s");
            assert_eq!(packet_samples(&pkt[..n]), Some(FRAME_SAMPLES));
            assert_eq!(frame_samples(&pkt[..n]), Some(FRAME_SAMPLES));
            assert!(pkt[0] >> 3 < 12, "narrowband SILK-only config");
            assert_eq!(d.decode(&pkt[..n], &mut pcm).unwrap(), FRAME_SAMPLES);
        }
        assert!(pcm[..FRAME_SAMPLES]
            .iter()
            .any(|&s| s.unsigned_abs() > 1000));
        assert_eq!(d.conceal(&mut pcm[..FRAME_SAMPLES]), Ok(FRAME_SAMPLES));
        assert_eq!(d.conceal(&mut pcm[..15]), Err(Error::Decode));
        assert_eq!(d.decode(&[], &mut pcm), Err(Error::BadPayload));
        assert_eq!(packet_samples(&[]), None);
        assert!(d.reset().is_ok());
    }

    #[test]
    fn fec_flag_follows_the_encoder_setting() {
        for (fec, loss) in [(true, 20u8), (false, 20), (true, 0)] {
            let mut e = Encoder::new(&EncoderConfig {
                inband_fec: fec,
                expected_loss_percent: loss,
                ..EncoderConfig::default()
            })
            .unwrap();
            let mut pkt = [0u8; MAX_FRAME_BYTES];
            let mut with_fec = 0;
            for k in 0..50 {
                let n = e.encode(&tone(k % 3, k), &mut pkt).unwrap();
                with_fec += usize::from(packet_has_fec(&pkt[..n]));
            }
            if fec && loss > 0 {
                assert!(with_fec >= 45, "fec on: {with_fec}/50");
            } else {
                assert_eq!(with_fec, 0, "fec {fec} loss {loss}");
            }
        }
    }

    #[test]
    fn framing_parser_finds_the_first_frame() {
        // Code 0: the frame is everything after the TOC.
        assert_eq!(first_frame(&[0x08, 1, 2, 3]), Some(&[1u8, 2, 3][..]));
        // Code 1: two equal halves; odd lengths are invalid.
        assert_eq!(first_frame(&[0x09, 1, 2, 3, 4]), Some(&[1u8, 2][..]));
        assert_eq!(first_frame(&[0x09, 1, 2, 3]), None);
        // Code 2: coded first length, one- and two-byte forms.
        assert_eq!(first_frame(&[0x0A, 1, 7, 8, 9]), Some(&[7u8][..]));
        assert_eq!(first_frame(&[0x0A, 5, 7]), None);
        let mut two = vec![0x0A, 252, 1];
        two.extend(std::iter::repeat_n(0xAB, 300));
        assert_eq!(first_frame(&two).map(<[u8]>::len), Some(256));
        // Code 3, CBR with padding (255 = 254 + more): 2 frames of 2 bytes.
        let mut p = vec![0x0B, 0x42, 255, 1];
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend(std::iter::repeat_n(0, 255));
        assert_eq!(first_frame(&p), Some(&[1u8, 2][..]));
        // Code 3, VBR: 3 frames, lengths 1 and 2 coded, the last implied.
        assert_eq!(
            first_frame(&[0x0B, 0x83, 1, 2, 9, 8, 8, 7]),
            Some(&[9u8][..])
        );
        assert_eq!(first_frame(&[0x0B, 0x80]), None, "zero frames");
        assert_eq!(first_frame(&[0x0B, 0x81, 5]), Some(&[5u8][..]));
        assert_eq!(first_frame(&[0x0B, 0x43, 9]), None, "padding past end");
        assert!(!packet_has_fec(&[]));
        assert!(!packet_has_fec(&[0x08]));
        // CELT-only configs never carry FEC even with the bit set.
        assert!(!packet_has_fec(&[0x80, 0xFF]));
        // SILK 20 ms mono: the LBRR flag is the second bit.
        assert!(packet_has_fec(&[0x08, 0x40]));
        assert!(!packet_has_fec(&[0x08, 0x80]));
        // SILK 60 ms mono: three VAD bits, then LBRR.
        assert!(packet_has_fec(&[0x18, 0x10]));
        // SILK 20 ms stereo: side channel LBRR is the fourth bit.
        assert!(packet_has_fec(&[0x0C, 0x10]));
    }
}
