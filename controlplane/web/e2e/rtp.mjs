// The legacy side's media for Strait's call end-to-end test: G.711 (table-free mu-law and A-law, ITU-T G.711
// segment encoding) and a UDP socket pair (RTP on an even port, RTCP on the next) that counts what arrives,
// measures its audio, echoes it back (new SSRC), or sends a 1 kHz tone every 20 ms.

import dgram from 'node:dgram';

const ULAW_BIAS = 0x84;
const ULAW_CLIP = 32635;

/** 16-bit linear PCM sample -> mu-law byte. */
export function ulawEncode(sample) {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > ULAW_CLIP) s = ULAW_CLIP;
  s += ULAW_BIAS;
  // Segment: position of the highest set bit above bit 7.
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mant = (s >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

/** mu-law byte -> 16-bit linear sample. */
export function ulawDecode(byte) {
  const u = ~byte & 0xff;
  const exp = (u >> 4) & 0x07;
  const mag = (((u & 0x0f) << 3) + ULAW_BIAS) << exp;
  return (u & 0x80) ? ULAW_BIAS - mag : mag - ULAW_BIAS;
}

/** 16-bit linear sample -> A-law byte. */
export function alawEncode(sample) {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  let sign = 0x80; // A-law: the sign bit set means positive
  if (s < 0) { sign = 0; s = -s - 1; }
  let exp = 0;
  let mant;
  if (s < 256) {
    mant = (s >> 4) & 0x0f;
  } else {
    exp = 7;
    for (let mask = 0x4000; (s & mask) === 0; mask >>= 1) exp--;
    mant = (s >> (exp + 3)) & 0x0f;
  }
  return ((sign | (exp << 4) | mant) ^ 0x55) & 0xff;
}

/** A-law byte -> 16-bit linear sample. */
export function alawDecode(byte) {
  const a = byte ^ 0x55;
  const exp = (a >> 4) & 0x07;
  const mant = a & 0x0f;
  const mag = exp === 0 ? (mant << 4) + 8 : ((mant << 4) + 0x108) << (exp - 1);
  return (a & 0x80) ? mag : -mag;
}

export const CODECS = {
  PCMU: { pt: 0, encode: ulawEncode, decode: ulawDecode },
  PCMA: { pt: 8, encode: alawEncode, decode: alawDecode },
};

/** RMS (linear, 0..32768) of a G.711 payload. */
export function payloadRms(payload, decode) {
  if (payload.length === 0) return 0;
  let sum = 0;
  for (const b of payload) { const v = decode(b); sum += v * v; }
  return Math.sqrt(sum / payload.length);
}

/** Checks of the G.711 code against values fixed by the standard and a round trip; returns a list of failures. */
export function g711SelfCheck() {
  const bad = [];
  const expect = (what, got, want) => { if (got !== want) bad.push(`${what}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`); };
  // Silence and full scale (G.711 tables: mu-law 0 -> 0xFF, A-law 0 -> 0xD5; extremes 0x80/0x00 and 0xAA/0x2A).
  expect('ulaw(0)', ulawEncode(0), 0xff);
  expect('ulaw(32767)', ulawEncode(32767), 0x80);
  expect('ulaw(-32768)', ulawEncode(-32768), 0x00);
  expect('alaw(0)', alawEncode(0), 0xd5);
  expect('alaw(32767)', alawEncode(32767), 0xaa);
  expect('alaw(-32768)', alawEncode(-32768), 0x2a);
  if (ulawDecode(0xff) !== 0) bad.push(`ulawDecode(0xff) = ${ulawDecode(0xff)}`);
  if (Math.abs(alawDecode(0xd5)) !== 8) bad.push(`alawDecode(0xd5) = ${alawDecode(0xd5)}`);
  // Round trip within half a quantization step of the segment (1/16 of the magnitude, at least 8 or 16).
  for (let x = -32000; x <= 32000; x += 37) {
    const u = ulawDecode(ulawEncode(x));
    const a = alawDecode(alawEncode(x));
    if (Math.abs(u - x) > Math.max(8, Math.abs(x) / 16)) bad.push(`ulaw round trip ${x} -> ${u}`);
    if (Math.abs(a - x) > Math.max(16, Math.abs(x) / 16)) bad.push(`alaw round trip ${x} -> ${a}`);
    if (bad.length > 5) break;
  }
  // Every byte decodes and re-encodes to itself (the decoder is the encoder's inverse on its range).
  for (let b = 0; b < 256; b++) {
    if (ulawEncode(ulawDecode(b)) !== b && b !== 0x7f) bad.push(`ulaw byte 0x${b.toString(16)} does not round-trip`);
    if (alawEncode(alawDecode(b)) !== b) bad.push(`alaw byte 0x${b.toString(16)} does not round-trip`);
    if (bad.length > 5) break;
  }
  return bad;
}

/** One 20 ms frame (160 samples at 8 kHz) of a 1 kHz tone at about -10 dBFS, starting at sample `n0`. */
export function toneFrame(n0, encode) {
  const out = Buffer.alloc(160);
  for (let i = 0; i < 160; i++) out[i] = encode(10000 * Math.sin((2 * Math.PI * 1000 * (n0 + i)) / 8000));
  return out;
}

/**
 * The legacy party's media endpoint: RTP on `port`, RTCP on `port + 1`, on `ip`.
 * mode 'echo': every RTP packet is sent back to its source with our SSRC.
 * mode 'tone': a 1 kHz tone in `codec` is sent every 20 ms to the address given to startTone().
 * Either way it counts packets and measures the audio it receives.
 */
export class LegacyMedia {
  constructor({ ip = '127.0.0.1', port, codec = 'PCMU', mode = 'echo' }) {
    this.ip = ip;
    this.port = port;
    this.codec = CODECS[codec];
    this.codecName = codec;
    this.mode = mode;
    this.ssrc = (Math.random() * 0xffffffff) >>> 0;
    this.rx = 0;
    this.rxBytes = 0;
    this.rxAudio = 0; // packets of our codec's payload type
    this.rxPts = new Map();
    this.rxSources = new Set();
    this.rxPeakRms = 0;
    this.rxSumRms = 0;
    this.rtcpRx = 0;
    this.echoed = 0;
    this.toneSent = 0;
    this.firstRxAt = 0;
    this.timer = null;
    this.rtp = dgram.createSocket('udp4');
    this.rtcp = dgram.createSocket('udp4');
    this.rtp.on('message', (msg, rinfo) => this.onRtp(msg, rinfo));
    this.rtcp.on('message', () => { this.rtcpRx++; });
    this.rtp.on('error', () => {});
    this.rtcp.on('error', () => {});
  }

  async bind() {
    await new Promise((res, rej) => { this.rtp.once('error', rej); this.rtp.bind(this.port, this.ip, res); });
    await new Promise((res, rej) => { this.rtcp.once('error', rej); this.rtcp.bind(this.port + 1, this.ip, res); });
    return this;
  }

  onRtp(msg, rinfo) {
    // RTP version 2, at least the fixed header; RTCP (PT 72-76 with the marker bit) is not expected here.
    if (msg.length < 12 || (msg[0] >> 6) !== 2) return;
    this.rx++;
    this.rxBytes += msg.length;
    if (!this.firstRxAt) this.firstRxAt = Date.now();
    const pt = msg[1] & 0x7f;
    this.rxPts.set(pt, (this.rxPts.get(pt) || 0) + 1);
    this.rxSources.add(`${rinfo.address}:${rinfo.port}`);
    if (pt === this.codec.pt) {
      const cc = msg[0] & 0x0f;
      let off = 12 + 4 * cc;
      if (msg[0] & 0x10 && msg.length >= off + 4) off += 4 + 4 * msg.readUInt16BE(off + 2);
      let end = msg.length;
      if (msg[0] & 0x20 && end > off) end -= msg[end - 1];
      if (end > off) {
        const rms = payloadRms(msg.subarray(off, end), this.codec.decode);
        this.rxAudio++;
        this.rxSumRms += rms;
        if (rms > this.rxPeakRms) this.rxPeakRms = rms;
      }
    }
    if (this.mode === 'echo') {
      const out = Buffer.from(msg);
      out.writeUInt32BE(this.ssrc, 8);
      this.rtp.send(out, rinfo.port, rinfo.address, (e) => { if (!e) this.echoed++; });
    }
  }

  /** Starts the tone toward ip:port (mode 'tone'). */
  startTone(ip, port) {
    if (this.timer) return;
    let seq = (Math.random() * 0xffff) >>> 0;
    let ts = (Math.random() * 0xffffffff) >>> 0;
    let n = 0;
    let first = true;
    const send = () => {
      const hdr = Buffer.alloc(12);
      hdr[0] = 0x80;
      hdr[1] = (first ? 0x80 : 0) | this.codec.pt;
      hdr.writeUInt16BE(seq & 0xffff, 2);
      hdr.writeUInt32BE(ts >>> 0, 4);
      hdr.writeUInt32BE(this.ssrc, 8);
      const pkt = Buffer.concat([hdr, toneFrame(n, this.codec.encode)]);
      this.rtp.send(pkt, port, ip, (e) => { if (!e) this.toneSent++; });
      first = false;
      seq = (seq + 1) & 0xffff;
      ts = (ts + 160) >>> 0;
      n = (n + 160) % 8000;
    };
    send();
    this.timer = setInterval(send, 20);
  }

  /** Figures for the result line. */
  summary() {
    const pts = [...this.rxPts.entries()].map(([pt, n]) => `${pt}:${n}`).join(',') || '-';
    const mean = this.rxAudio ? Math.round(this.rxSumRms / this.rxAudio) : 0;
    const sent = this.mode === 'echo' ? `echoed ${this.echoed}` : `tone sent ${this.toneSent}`;
    return `legacy rx ${this.rx} (pt ${pts}; rms mean ${mean} peak ${Math.round(this.rxPeakRms)}; rtcp ${this.rtcpRx}), ${sent}`;
  }

  close() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    try { this.rtp.close(); } catch { /* closed */ }
    try { this.rtcp.close(); } catch { /* closed */ }
  }
}
