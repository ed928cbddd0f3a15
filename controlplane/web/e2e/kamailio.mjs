// End-to-end: Kamailio (Debian's kamailio + kamailio-websocket-modules) with its rtpengine module pointed at a
// media proxy over rtpengine's "ng" protocol carries calls between the web phone (JsSIP in headless Chromium) and
// a legacy SIP party (SIPp), audio checked both ways.
//
//   node kamailio.mjs [--media strait|rtpengine]
//
// --media strait (the default): Strait is the media proxy; Kamailio's rtpengine_sock is Strait's `[ng] listen`.
// --media rtpengine: Debian's rtpengine (userspace, --table=-1) is, with the very same Kamailio script: the
//   harness's self-check, so a failure with Strait is Strait's and not the script's or the test's.
// Either way strait also serves the web phone page (on its WS listener); the page registers to Kamailio's WS
// listener instead of strait's.
//
// Processes (all on 127.0.0.1, private ports):
//   kamailio   kamailio/kamailio.cfg, foreground (-DD -E): UDP 17260, WS 17280; numeric users go to the SIPp
//              callee at 17290, registered users to their WebSocket
//   strait     WS 17380 (the page), UDP 17360; ng 17223 and media 24000-24999 with --media strait
//   rtpengine  ng 17222, media 23000-23999 (--media rtpengine only)
//   SIPp       callee 17290 / caller 17291, this script's RTP sockets from 17400 (rtp.mjs)
// Cases, each one PASS/FAIL line with its figures:
//   1  alice registers over ws://127.0.0.1:17280 (Kamailio; page loaded from strait)
//   2  browser -> legacy: alice calls sip:1234@127.0.0.1; Kamailio sends the INVITE to the SIPp callee with
//      rtpengine_offer (legacy flags), the 200 back with rtpengine_answer (WebRTC flags); the callee's SDP must be
//      plain RTP/AVP from the proxy's media ports without ICE/DTLS/rtcp-mux, the browser's answer UDP/TLS/RTP/SAVPF
//      with ICE, a fingerprint and rtcp-mux; ~4 s of media checked both ways (getStats() in the browser: > 50
//      packets in with audio energy, > 50 out; the legacy socket: > 50 packets, all from the proxy's media
//      ports); the browser hangs up, SIPp must see the BYE
//   3  legacy -> browser: SIPp calls sip:alice@127.0.0.1:17260, Kamailio looks her up and offers WebRTC to the
//      page, which answers; media as above (the legacy side sends a tone); SIPp hangs up, the page must see it
// During each call ng `list` on the proxy must name the call (and with Strait, `strait-dpctl counters` show legs).
// After it: Kamailio must have run rtpengine_delete for the call (its log line carries the Call-ID), and within
// 5 s ng `list` must be empty (with Strait also 0 data-plane legs); rtpengine runs with --delete-delay=0 and the
// media timeouts are far away, so only Kamailio's delete empties it. rtpengine must also have logged the delete.
// Kamailio must log no rtpengine-module error or warning for either call.
//
// The page asks for bundlePolicy max-bundle, under which Chrome refuses a remote description without an
// a=group:BUNDLE line. rtpengine 10.5 (Debian 12) leaves the group out of what it sends the browser, so with
// --media rtpengine the page's peer connections are given Chrome's (and JsSIP's) default, balanced, instead;
// Strait is held to the page's max-bundle. E2E_BUNDLE_POLICY=balanced|max-bundle|page overrides either.
//
// The ng commands Kamailio sent (rtpengine logs them at level 7; Strait does not log them) are written to
// <tmp>/ng-requests.log with E2E_KEEP_TMP; E2E_SHOW_NG=1 prints them.
// Exit status 0 when every case passed, 1 otherwise. Every wait is bounded; everything started is stopped.
// Run it inside a network namespace with only loopback (scripts/e2e.sh does).
//
// Environment (all optional): STRAIT_BIN, STRAIT_DPCTL, SIPP, CHROMIUM, E2E_KEEP_TMP as for call.mjs;
//   KAMAILIO (default kamailio), RTPENGINE (default /usr/bin/rtpengine), E2E_TIMEOUT_MS (default 180000),
//   E2E_SHOW_NG=1, E2E_KAMAILIO_CFG (another script to try; it gets the same -A defines),
//   E2E_KAMAILIO_DEBUG (kamailio --debug level, e.g. 3), E2E_BUNDLE_POLICY (above).

import dgram from 'node:dgram';
import { readFileSync, writeFileSync, mkdirSync, createWriteStream } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Run, withTimeout, until, sleep, straitBin } from './lib.mjs';
import { LegacyMedia } from './rtp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const sippDir = join(here, 'sipp');
const kamailioCfg = process.env.E2E_KAMAILIO_CFG || join(here, 'kamailio', 'kamailio.cfg');
const sippBin = process.env.SIPP || 'sipp';
const kamailioBin = process.env.KAMAILIO || 'kamailio';
const rtpengineBin = process.env.RTPENGINE || '/usr/bin/rtpengine';
const dpctlBin = process.env.STRAIT_DPCTL || join(dirname(straitBin), 'strait-dpctl');
const overallMs = Number(process.env.E2E_TIMEOUT_MS || 180000);

const mediaArg = process.argv.indexOf('--media');
const MEDIA = mediaArg >= 0 ? process.argv[mediaArg + 1] : 'strait';
if (MEDIA !== 'strait' && MEDIA !== 'rtpengine') {
  console.error('usage: node kamailio.mjs [--media strait|rtpengine]');
  process.exit(2);
}

const P = {
  kamUdp: 17260, kamWs: 17280, // Kamailio
  straitWs: 17380, straitUdp: 17360, straitNg: 17223, // strait (page; ng with --media strait)
  rtpeNg: 17222, // rtpengine
  uas: 17290, uac: 17291, uasMedia: 17292, uacMedia: 17294, // SIPp and its own (unused) media ports
  legacy: 17400, // + 2 per call: this script's RTP/RTCP sockets
};
const RANGE = MEDIA === 'strait' ? { min: 24000, max: 24999 } : { min: 23000, max: 23999 };
const NG = MEDIA === 'strait' ? P.straitNg : P.rtpeNg;
const HOLD_MS = 4000;
const BUNDLE_POLICY = process.env.E2E_BUNDLE_POLICY || (MEDIA === 'rtpengine' ? 'balanced' : 'page');
if (!['balanced', 'max-bundle', 'max-compat', 'page'].includes(BUNDLE_POLICY)) {
  console.error(`E2E_BUNDLE_POLICY=${BUNDLE_POLICY}: want balanced, max-bundle, max-compat or page`);
  process.exit(2);
}

const run = new Run(`kamailio-${MEDIA}`, overallMs);
const lines = [];
let failures = 0;
let legacyPort = P.legacy;
let kamailio = null;
let proxy = null; // rtpengine's process, or strait's

const readOr = (path) => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };

// ------------------------------------------------------------------------------------------------------------
// ng client (bencode over UDP), to ask the proxy which calls it holds

function bencode(v) {
  if (typeof v === 'number') return Buffer.from(`i${Math.trunc(v)}e`);
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v);
    return Buffer.concat([Buffer.from(`${b.length}:`), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(bencode), Buffer.from('e')]);
  const keys = Object.keys(v).sort();
  return Buffer.concat([Buffer.from('d'), ...keys.flatMap((k) => [bencode(k), bencode(v[k])]), Buffer.from('e')]);
}

/** Decodes one bencoded value at `buf[pos]`: [value, next position]; strings come back as JS strings. Throws on
 * malformed or truncated input. */
function bdecode(buf, pos = 0, depth = 0) {
  if (depth > 32) throw new Error('bencode nested too deep');
  if (pos >= buf.length) throw new Error('bencode truncated');
  const c = buf[pos];
  if (c === 0x69) { // i
    const end = buf.indexOf(0x65, pos);
    if (end < 0) throw new Error('bencode: unterminated integer');
    return [Number(buf.subarray(pos + 1, end).toString()), end + 1];
  }
  if (c === 0x6c || c === 0x64) { // l, d
    const out = c === 0x6c ? [] : {};
    let p = pos + 1;
    while (p < buf.length && buf[p] !== 0x65) {
      if (c === 0x6c) {
        const [v, n] = bdecode(buf, p, depth + 1);
        out.push(v);
        p = n;
      } else {
        const [k, n] = bdecode(buf, p, depth + 1);
        const [v, n2] = bdecode(buf, n, depth + 1);
        out[String(k)] = v;
        p = n2;
      }
    }
    if (p >= buf.length) throw new Error('bencode: unterminated list or dictionary');
    return [out, p + 1];
  }
  const colon = buf.indexOf(0x3a, pos);
  if (colon < 0) throw new Error('bencode: bad string');
  const len = Number(buf.subarray(pos, colon).toString());
  if (!Number.isInteger(len) || len < 0 || colon + 1 + len > buf.length) throw new Error('bencode: bad string length');
  return [buf.subarray(colon + 1, colon + 1 + len).toString(), colon + 1 + len];
}

let ngSeq = 0;
/** Sends one ng command to the proxy and resolves with its reply dictionary (3 tries of 1 s). */
async function ng(command, args = {}) {
  const sock = dgram.createSocket('udp4');
  const cookie = `e2e${process.pid}_${++ngSeq}`;
  const msg = Buffer.concat([Buffer.from(`${cookie} `), bencode({ command, ...args })]);
  sock.on('error', () => {}); // an ICMP error on loopback: the retries and the timeout decide
  try {
    await new Promise((res, rej) => { sock.once('error', rej); sock.bind(0, '127.0.0.1', res); });
    const reply = new Promise((res) => {
      sock.on('message', (m) => {
        const sp = m.indexOf(0x20);
        if (sp > 0 && m.subarray(0, sp).toString() === cookie) res(m.subarray(sp + 1));
      });
    });
    for (let attempt = 0; attempt < 3; attempt++) {
      sock.send(msg, NG, '127.0.0.1');
      const r = await Promise.race([reply, sleep(1000).then(() => null)]);
      if (r) return bdecode(r)[0];
    }
    throw new Error(`ng ${command} to 127.0.0.1:${NG}: no reply`);
  } finally {
    sock.close();
  }
}

/** The Call-IDs the proxy holds (ng list), or { error }. */
async function ngCalls() {
  try {
    const r = await ng('list', { limit: 100 });
    if (r.result !== 'ok') return { error: `ng list: ${JSON.stringify(r)}` };
    return { calls: Array.isArray(r.calls) ? r.calls : [] };
  } catch (e) {
    return { error: e.message };
  }
}

// ------------------------------------------------------------------------------------------------------------
// Processes

/** Whether 127.0.0.1:port is bound (UDP) or listening (TCP) in this network namespace. */
function bound(proto, port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readOr(`/proc/net/${proto}`).split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === `0100007F:${hex}` && (proto === 'udp' || f[3] === '0A');
  });
}

/** Keeps everything a proxy prints (its tracked output is truncated) so that the ng commands it logged can be
 * read back with ngCommands(). */
let proxyText = '';
function watchProxyLog(p) {
  const onData = (buf) => {
    if (proxyText.length < 16 << 20) proxyText += buf.toString();
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
}

/** The ng commands the proxy logged, in order: [{ command, text }]. rtpengine (log level 7 for its control
 * subsystem) prints "Dump for 'offer' from 127.0.0.1:PORT: { ... }", the SDP with its line breaks, in one log
 * entry; every entry starts with a "[seconds.micros] " time stamp. */
function ngCommands() {
  const out = [];
  for (const entry of proxyText.split(/\n(?=\[\d+\.\d+\] )/)) {
    const m = entry.match(/Dump for '(\w+)' from \S+: (\{[\s\S]*\})\s*$/);
    if (m) out.push({ command: m[1], text: m[2] });
  }
  return out;
}

async function startRtpengine() {
  const p = run.spawnTracked(rtpengineBin, [
    '--config-file=none', '--foreground', '--log-stderr', '--table=-1', '--interface=127.0.0.1',
    `--listen-ng=127.0.0.1:${P.rtpeNg}`, `--port-min=${RANGE.min}`, `--port-max=${RANGE.max}`, '--num-threads=2',
    '--log-level=6', '--log-level-control=7', '--max-log-line-length=0', '--timeout=600', '--delete-delay=0',
  ]);
  watchProxyLog(p);
  await until(async () => {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`rtpengine exited: ${p.output.slice(-2000)}`);
    try { return (await ng('ping')).result === 'pong'; } catch { return false; }
  }, 10000, `rtpengine answering ng ping on ${P.rtpeNg}`, 200);
  return p;
}

async function startKamailio() {
  const rt = join(run.tmp, 'kamailio-run');
  mkdirSync(rt, { recursive: true });
  const args = ['-f', kamailioCfg, '-DD', '-E', '-m', '64', '-M', '8', '-Y', rt, '-P', join(rt, 'kamailio.pid'),
    '-A', `LISTEN_UDP=udp:127.0.0.1:${P.kamUdp}`, '-A', `LISTEN_WS=tcp:127.0.0.1:${P.kamWs}`,
    '-A', `RTPENGINE_SOCK="udp:127.0.0.1:${NG}"`, '-A', `LEGACY_GW="127.0.0.1:${P.uas}"`];
  if (process.env.E2E_KAMAILIO_DEBUG) args.push(`--debug=${process.env.E2E_KAMAILIO_DEBUG}`);
  const p = run.spawnTracked(kamailioBin, args, { cwd: rt });
  // All of it, for E2E_KEEP_TMP (the tracked output keeps the last 100 kB).
  const log = createWriteStream(join(run.tmp, 'kamailio.log'));
  log.on('error', () => {});
  const keep = (b) => { if (!log.writableEnded) log.write(b); };
  p.stdout.on('data', keep);
  p.stderr.on('data', keep);
  p.once('close', () => log.end());
  await until(() => {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`kamailio exited (${p.exitCode ?? p.signalCode}): ${p.output.slice(-3000)}`);
    return bound('udp', P.kamUdp) && bound('tcp', P.kamWs);
  }, 15000, `kamailio listening on udp ${P.kamUdp} and ws ${P.kamWs}`, 100);
  return p;
}

function startSipp(label, { scenario, port, mediaPort, target, service, hold, keys = {} }) {
  const f = (k) => join(run.tmp, `${label}-${k}.log`);
  const files = { messages: f('messages'), errors: f('errors'), logs: f('logs') };
  const args = [];
  if (target) args.push(target);
  args.push('-sf', join(sippDir, scenario), '-i', '127.0.0.1', '-p', String(port), '-mp', String(mediaPort),
    '-m', '1', '-nostdin', '-aa', '-timeout', '45s', '-timeout_error',
    '-trace_msg', '-message_file', files.messages, '-trace_err', '-error_file', files.errors,
    '-trace_logs', '-log_file', files.logs);
  if (service) args.push('-s', service);
  if (hold !== undefined) args.push('-d', String(hold));
  for (const [k, v] of Object.entries(keys)) args.push('-key', k, String(v));
  const p = run.spawnTracked(sippBin, args, { cwd: run.tmp });
  p.label = label;
  p.files = files;
  return p;
}

const sippLog = (p, re) => readOr(p.files.logs).match(re);

function sippTrace(p) {
  const out = [];
  const re = /message (received|sent) (?:\[\d+\] bytes :|\(\d+ bytes\):)\s*\n+([^\r\n]+)/g;
  for (const m of readOr(p.files.messages).matchAll(re)) out.push(`${m[1] === 'received' ? '<-' : '->'} ${m[2].trim()}`);
  return out;
}

function sippDescribe(p) {
  const errors = [...readOr(p.files.errors).matchAll(/(Aborting call[^\n]*|[^\n]*while expecting[^\n]*|[^\n]*timed out[^\n]*)/g)]
    .slice(0, 2).map((m) => m[1].trim().slice(0, 200)).join(' | ');
  return `SIPp ${p.label} exit ${p.exitCode ?? 'running'}; saw [${sippTrace(p).join(', ')}]` + (errors ? `; errors: ${errors}` : '');
}

function sippAlive(p, what) {
  if (p.exitCode !== null) throw new Error(`SIPp ended before ${what}: ${sippDescribe(p)}`);
  if (p.signalCode !== null) throw new Error(`SIPp killed (${p.signalCode}) before ${what}`);
}

async function sippDone(p, ms, what) {
  let r;
  try {
    r = await withTimeout(p.exited, ms, what);
  } catch {
    throw new Error(`${what}: timed out after ${ms} ms; ${sippDescribe(p)}`);
  }
  if (r.code !== 0) throw new Error(`${what}: ${sippDescribe(p)}`);
}

/** The body of the first SIP message SIPp received whose first line matches `re` (from its -trace_msg file). */
function sippReceivedBody(p, re) {
  const text = readOr(p.files.messages);
  for (const chunk of text.split(/-{20,}[^\n]*\n/)) {
    if (!/message received/.test(chunk)) continue;
    const msg = chunk.replace(/^[^\n]*message received[^\n]*\n+/, '');
    if (!re.test(msg.split(/\r?\n/, 1)[0])) continue;
    const i = msg.search(/\r?\n\r?\n/);
    return i < 0 ? '' : msg.slice(i).trim();
  }
  return null;
}

// ------------------------------------------------------------------------------------------------------------
// Checks

const pageState = (tab) => tab.evaluate(() => window.strait.state());

async function waitCall(tab, pred, ms, what, sipp) {
  return until(async () => {
    const s = await pageState(tab);
    if (s.call && pred(s.call)) return s;
    if (sipp) sippAlive(sipp, what);
    return null;
  }, ms, what, 100);
}

const inRange = (port) => Number(port) >= RANGE.min && Number(port) <= RANGE.max;

/** What is wrong with an SDP meant for a legacy party (plain RTP/AVP from the proxy). */
function legacySdpProblems(sdp, who) {
  const p = [];
  if (!sdp) return [`${who}: no SDP`];
  const m = sdp.match(/^m=audio (\d+) (\S+) ([\d ]+)/m);
  if (!m) return [`${who}: no m=audio line`];
  if (m[2] !== 'RTP/AVP') p.push(`${who}: transport ${m[2]}, want RTP/AVP`);
  if (!inRange(m[1])) p.push(`${who}: media port ${m[1]} outside the proxy's ${RANGE.min}-${RANGE.max}`);
  const c = sdp.match(/^c=IN IP4 (\S+)/m);
  if (!c || c[1] !== '127.0.0.1') p.push(`${who}: c= ${c ? c[1] : 'missing'}, want 127.0.0.1`);
  for (const [re, what] of [[/^a=ice-ufrag/m, 'ICE'], [/^a=candidate/m, 'ICE candidates'], [/^a=fingerprint/m, 'a DTLS fingerprint'],
    [/^a=crypto/m, 'SDES'], [/^a=rtcp-mux/m, 'rtcp-mux']]) {
    if (re.test(sdp)) p.push(`${who}: has ${what}`);
  }
  if (!m[3].trim().split(/\s+/).some((pt) => pt === '0' || pt === '8')) p.push(`${who}: no G.711 in ${m[3].trim()}`);
  return p;
}

/** What is wrong with an SDP meant for the browser (WebRTC from the proxy). */
function webrtcSdpProblems(sdp, who) {
  const p = [];
  if (!sdp) return [`${who}: no SDP`];
  const m = sdp.match(/^m=audio (\d+) (\S+)/m);
  if (!m) return [`${who}: no m=audio line`];
  if (m[2] !== 'UDP/TLS/RTP/SAVPF') p.push(`${who}: transport ${m[2]}, want UDP/TLS/RTP/SAVPF`);
  for (const [re, what] of [[/^a=ice-ufrag/m, 'ICE credentials'], [/^a=fingerprint/m, 'a DTLS fingerprint'], [/^a=rtcp-mux/m, 'rtcp-mux'],
    [/^a=setup:/m, 'a=setup']]) {
    if (!re.test(sdp)) p.push(`${who}: no ${what}`);
  }
  if (/^a=crypto/m.test(sdp)) p.push(`${who}: offers SDES`);
  const cands = [...sdp.matchAll(/^a=candidate:\S+ 1 (?:udp|UDP) \d+ (\S+) (\d+) typ (\w+)/gm)];
  if (cands.length === 0) p.push(`${who}: no RTP candidate`);
  for (const c of cands) {
    if (c[1] !== '127.0.0.1' || !inRange(c[2])) p.push(`${who}: candidate ${c[1]}:${c[2]} is not the proxy's`);
  }
  return p;
}

/** The SDP of the first SIP message the page received whose first line matches `re`. */
function pageReceivedSdp(tab, re, since) {
  for (const f of tab.sipIn) {
    if (f.at < since || !re.test(f.text.split(/\r?\n/, 1)[0])) continue;
    const i = f.text.search(/\r?\n\r?\n/);
    return i < 0 ? '' : f.text.slice(i).trim();
  }
  return null;
}

function mediaProblems(s, media) {
  const p = [];
  const inb = s && s.inbound;
  const out = s && s.outbound;
  if (!inb) p.push('browser: no inbound audio stats');
  else {
    if (!(inb.packetsReceived > 50)) p.push(`browser received ${inb.packetsReceived} RTP packets (want > 50)`);
    if (!(inb.totalAudioEnergy > 0 || inb.audioLevel > 0)) p.push('browser received audio without energy');
  }
  if (!(out && out.packetsSent > 50)) p.push(`browser sent ${out ? out.packetsSent : 0} RTP packets (want > 50)`);
  if (!(media.rx > 50)) p.push(`legacy socket received ${media.rx} RTP packets (want > 50)`);
  for (const src of media.rxSources) {
    const [ip, port] = [src.slice(0, src.lastIndexOf(':')), src.slice(src.lastIndexOf(':') + 1)];
    if (ip !== '127.0.0.1' || !inRange(port)) p.push(`legacy RTP came from ${src}, not from the proxy's media ports`);
  }
  return p;
}

function mediaFigures(s, media) {
  const inb = (s && s.inbound) || {};
  const out = (s && s.outbound) || {};
  const energy = typeof inb.totalAudioEnergy === 'number' ? inb.totalAudioEnergy.toFixed(3) : '-';
  return `browser rx ${inb.packetsReceived ?? 0} (energy ${energy}, ${s && s.codec ? s.codec : '-'}), ` +
    `tx ${out.packetsSent ?? 0} (${s && s.sendCodec ? s.sendCodec : '-'}); ${media.summary()}`;
}

/** Polls getStats() until media flows both ways for `minMs` (or `maxMs` pass, or the call ends). */
async function mediaPhase(tab, media, { minMs, maxMs, sipp, onFlowing }) {
  const t0 = Date.now();
  let last = null;
  let flowing = false;
  for (;;) {
    const s = await tab.evaluate(() => window.strait.stats());
    if (s) last = s;
    if ((await pageState(tab)).ended) break;
    if (sipp && sipp.exitCode !== null && sipp.exitCode !== 0) break;
    const ok = mediaProblems(last, media).length === 0;
    if (ok && !flowing) {
      flowing = true;
      if (onFlowing) await onFlowing();
    }
    const elapsed = Date.now() - t0;
    if ((ok && elapsed >= minMs) || elapsed >= maxMs) break;
    await sleep(250);
  }
  return last;
}

/** Data-plane legs strait's workers hold (strait-dpctl counters), or { error }. */
async function dpctlLegs() {
  const p = run.spawnTracked(dpctlBin, ['counters', '--shm', run.shm]);
  let r;
  try {
    r = await withTimeout(p.exited, 3000, 'strait-dpctl counters');
  } catch (e) {
    await run.stop(p, 500);
    return { error: e.message };
  }
  const workers = [...p.output.matchAll(/^worker \d+:.*?\blegs=(\d+)/gm)];
  if (r.code !== 0) return { error: `strait-dpctl counters failed (exit ${r.code}): ${p.output.trim().split('\n').slice(-2).join(' / ')}` };
  if (workers.length === 0) return { error: `strait-dpctl counters printed no worker lines: ${p.output.trim().slice(0, 200)}` };
  return { legs: workers.reduce((n, m) => n + Number(m[1]), 0) };
}

/** During the call: the proxy must hold it (ng list names `callId`; strait's data plane holds legs). */
async function proxyDuringCall(callId, problems) {
  const l = await ngCalls();
  let fig;
  if (l.error) problems.push(`during the call: ${l.error}`);
  else if (!l.calls.includes(callId)) problems.push(`during the call ng list named ${JSON.stringify(l.calls)}, not ${callId}`);
  fig = `ng list during the call: ${l.error ? '?' : l.calls.length}`;
  if (MEDIA === 'strait') {
    const d = await dpctlLegs();
    if (d.error) problems.push(`during the call: ${d.error}`);
    else if (!(d.legs > 0)) problems.push('during the call the data plane held no legs');
    fig += `, data-plane legs ${d.error ? '?' : d.legs}`;
  }
  return fig;
}

/** After the call: the proxy must hold nothing within 5 s, and must have logged Kamailio's delete. */
async function proxyAfterCall(callId, ngBefore) {
  const end = Date.now() + 5000;
  let why;
  for (;;) {
    why = null;
    const l = await ngCalls();
    if (l.error) why = l.error;
    else if (l.calls.length) why = `ng list still names ${JSON.stringify(l.calls)}`;
    if (!why && MEDIA === 'strait') {
      const d = await dpctlLegs();
      if (d.error) why = d.error;
      else if (d.legs !== 0) why = `${d.legs} data-plane legs remain`;
    }
    if (!why || Date.now() >= end) break;
    await sleep(250);
  }
  const deletes = ngCommands().slice(ngBefore).filter((e) => e.command === 'delete' && e.text.includes(`"${callId}"`));
  // Kamailio's log prefix names the Call-ID: "{<msg id> <CSeq> <Call-ID>} <script>: BYE ...: rtpengine_delete".
  const kamDelete = kamailio.output.split('\n').some((l) => l.includes(` ${callId}} `) && /rtpengine_delete/.test(l));
  const problems = [];
  if (why) problems.push(`after the call: ${why}`);
  if (!kamDelete) problems.push(`Kamailio logged no rtpengine_delete for ${callId}`);
  if (MEDIA === 'rtpengine' && deletes.length === 0) problems.push(`rtpengine logged no delete for ${callId}`);
  const figures = `Kamailio ran rtpengine_delete: ${kamDelete ? 'yes' : 'no'}; ` +
    (MEDIA === 'rtpengine' ? `rtpengine got the delete: ${deletes.length ? 'yes' : 'no'}; ` : '') +
    `proxy ${why ? 'not ' : ''}empty after the call`;
  return { problem: problems.length ? problems.join('; ') : null, figures };
}

/** Errors Kamailio's rtpengine module logged while handling the call `callId` (a refused command, no reply). */
function kamailioNgErrors(callId) {
  return kamailio.output.split('\n').filter((l) => l.includes(` ${callId}} `) && /(ERROR|CRITICAL|WARNING):.*rtpengine/.test(l))
    .map((l) => l.trim().slice(0, 300));
}

function callIdOf(text) {
  const m = text.match(/^(?:Call-ID|i):\s*(\S+)/im);
  return m ? m[1] : null;
}

// ------------------------------------------------------------------------------------------------------------
// Cases

async function caseRun(name, title, fn) {
  const ctx = { sipps: [], media: [] };
  const t0 = Date.now();
  let figures = '';
  let error = null;
  try {
    figures = await withTimeout(fn(ctx), 60000, 'case');
  } catch (e) {
    error = e && e.message ? e.message : String(e);
  }
  if (tab) await tab.evaluate(() => window.strait.hangup && window.strait.hangup()).catch(() => {});
  for (const s of ctx.sipps) await run.stop(s, 1000);
  for (const m of ctx.media) m.close();
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const line = error ? `case ${name} ${title}: FAIL (${error}; ${secs} s)` : `case ${name} ${title}: PASS (${figures}; ${secs} s)`;
  if (error) failures++;
  lines.push(line);
  console.log(line);
  if (error) {
    for (const s of ctx.sipps) process.stderr.write(`--- ${s.label} ---\n${sippDescribe(s)}\nlog: ${readOr(s.files.logs).trim()}\n`);
  }
  return !error;
}

function nextLegacyPort() {
  const p = legacyPort;
  legacyPort += 2;
  return p;
}

let tab = null;

async function browserToLegacy(ctx) {
  const media = await new LegacyMedia({ port: nextLegacyPort(), codec: 'PCMU', mode: 'echo' }).bind();
  ctx.media.push(media);
  const sipp = startSipp('1234-uas', {
    scenario: 'uas_answer.xml', port: P.uas, mediaPort: P.uasMedia,
    keys: { audio_ip: '127.0.0.1', audio_port: media.port, audio_pt: 0, audio_codec: 'PCMU' },
  });
  ctx.sipps.push(sipp);
  await until(() => { sippAlive(sipp, `listening on ${P.uas}`); return bound('udp', P.uas); }, 5000, `SIPp listening on ${P.uas}`, 50);
  const ngBefore = ngCommands().length;
  const t0 = Date.now();
  await tab.evaluate((t) => window.strait.call(t), 'sip:1234@127.0.0.1');
  const st = await waitCall(tab, (c) => c.confirmed || c.failed || c.ended, 15000, 'the call to be answered');
  if (st.call.failed) {
    throw new Error(`the browser's INVITE failed: ${st.call.failed.status || ''} ${st.call.failed.cause}` +
      (sippLog(sipp, /OFFER/) ? '' : '; the SIPp callee never got an INVITE'));
  }
  if (!st.call.confirmed) throw new Error(`call ended before it was confirmed: ${JSON.stringify(st.call)}`);
  const setup = st.call.confirmed - t0;
  const problems = [];
  const offer = sippLog(sipp, /OFFER callee=(\S+) ip=(\S+) port=(\d+) pts=([\d ]+)/);
  if (!offer) problems.push('SIPp logged no offer');
  else if (offer[1] !== '1234') problems.push(`the callee got Request-URI user ${offer[1]}, want 1234`);
  problems.push(...legacySdpProblems(sippReceivedBody(sipp, /^INVITE /), 'the INVITE at the legacy callee'));
  const answerSdp = pageReceivedSdp(tab, /^SIP\/2\.0 200/, t0);
  problems.push(...webrtcSdpProblems(answerSdp, 'the 200 OK at the browser'));
  const invite = tab.sipIn.find((f) => f.at >= t0 && /^SIP\/2\.0 /.test(f.text) && /^CSeq:\s*\d+\s+INVITE/im.test(f.text));
  const callId = invite ? callIdOf(invite.text) : null;
  if (!callId) problems.push('no Call-ID in the responses the page got');
  let during = 'not sampled';
  const onFlowing = async () => { during = await proxyDuringCall(callId, problems); };
  const stats = await mediaPhase(tab, media, { minMs: HOLD_MS, maxMs: HOLD_MS + 8000, sipp, onFlowing });
  problems.push(...mediaProblems(stats, media));
  await tab.evaluate(() => window.strait.hangup());
  const end = await waitCall(tab, (c) => c.ended || c.failed, 5000, 'the call to end after hanging up');
  if (!end.call.ended) problems.push(`after hanging up: ${JSON.stringify(end.call.failed)}`);
  try {
    await sippDone(sipp, 10000, 'SIPp seeing the BYE');
    if (!sippLog(sipp, /BYE received/)) problems.push('SIPp logged no BYE');
  } catch (e) { problems.push(e.message); }
  const after = await proxyAfterCall(callId, ngBefore);
  if (after.problem) problems.push(after.problem);
  for (const e of kamailioNgErrors(callId)) problems.push(`Kamailio: ${e}`);
  const figures = `setup ${setup} ms; legacy offer ${offer ? `${offer[2]}:${offer[3]} pt ${offer[4].trim()}` : '-'}; ` +
    `${mediaFigures(stats, media)}; ${during}; BYE seen by SIPp; ${after.figures}`;
  if (problems.length) throw new Error(`${problems.join('; ')} [${figures}]`);
  return figures;
}

async function legacyToBrowser(ctx) {
  const media = await new LegacyMedia({ port: nextLegacyPort(), codec: 'PCMU', mode: 'tone' }).bind();
  ctx.media.push(media);
  const ngBefore = ngCommands().length;
  const t0 = Date.now();
  const sipp = startSipp('alice-uac', {
    scenario: 'uac_call.xml', target: `127.0.0.1:${P.kamUdp}`, service: 'alice', port: P.uac, mediaPort: P.uacMedia,
    hold: HOLD_MS, keys: { audio_ip: '127.0.0.1', audio_port: media.port, audio_pt: 0, audio_codec: 'PCMU' },
  });
  ctx.sipps.push(sipp);
  await until(async () => { sippAlive(sipp, 'the page got the call'); return (await pageState(tab)).incoming; },
    10000, 'an incoming call on the page');
  const ring = Date.now() - t0;
  const problems = [];
  const inviteFrame = tab.sipIn.find((f) => f.at >= t0 && /^INVITE /.test(f.text));
  const callId = inviteFrame ? callIdOf(inviteFrame.text) : null;
  problems.push(...webrtcSdpProblems(pageReceivedSdp(tab, /^INVITE /, t0), 'the INVITE at the browser'));
  await tab.evaluate(() => window.strait.answer());
  const answer = await until(() => { sippAlive(sipp, 'the 200 OK'); return sippLog(sipp, /ANSWER ip=(\S+) port=(\d+) pts=([\d ]+)/); },
    10000, 'the 200 OK at the SIPp caller', 50);
  media.startTone(answer[1], Number(answer[2]));
  problems.push(...legacySdpProblems(sippReceivedBody(sipp, /^SIP\/2\.0 200/), 'the 200 OK at the legacy caller'));
  await waitCall(tab, (c) => c.confirmed || c.ended || c.failed, 5000, 'the ACK at the page');
  let during = 'not sampled';
  const onFlowing = async () => { during = await proxyDuringCall(callId, problems); };
  const stats = await mediaPhase(tab, media, { minMs: Infinity, maxMs: HOLD_MS + 8000, sipp, onFlowing });
  problems.push(...mediaProblems(stats, media));
  try {
    const end = await waitCall(tab, (c) => c.ended || c.failed, 8000, "the call to end on SIPp's BYE");
    if (!end.call.ended || end.call.ended.originator !== 'remote') problems.push(`the page's call ended ${JSON.stringify(end.call.ended || end.call.failed)}`);
  } catch (e) { problems.push(e.message); }
  try {
    await sippDone(sipp, 10000, "SIPp's BYE answered");
  } catch (e) { problems.push(e.message); }
  const after = await proxyAfterCall(callId, ngBefore);
  if (after.problem) problems.push(after.problem);
  for (const e of kamailioNgErrors(callId)) problems.push(`Kamailio: ${e}`);
  const figures = `ringing after ${ring} ms; legacy answer ${answer[1]}:${answer[2]} pt ${answer[3].trim()}; ` +
    `${mediaFigures(stats, media)}; ${during}; page saw the BYE; ${after.figures}`;
  if (problems.length) throw new Error(`${problems.join('; ')} [${figures}]`);
  return figures;
}

async function main() {
  const defaults = execFileSync(straitBin, ['--print-default-config'], { encoding: 'utf8', timeout: 10000 });
  const hasNg = /^\[ng\]/m.test(defaults);
  if (MEDIA === 'strait' && !hasNg) throw new Error(`${straitBin} has no [ng] section: it cannot be Kamailio's media proxy`);
  const sections = {
    sip: { ws: `127.0.0.1:${P.straitWs}`, wss: 'off', udp: `127.0.0.1:${P.straitUdp}`, tcp: 'off' },
    media: { port_min: 24000, port_max: 24999 },
  };
  if (hasNg) sections.ng = { listen: MEDIA === 'strait' ? `127.0.0.1:${P.straitNg}` : 'off' };
  await run.startStrait(sections, ['ws']);
  if (MEDIA === 'strait') {
    proxy = run.strait;
    watchProxyLog(proxy);
    await until(async () => {
      try { return (await ng('ping')).result === 'pong'; } catch { return false; }
    }, 10000, `strait answering ng ping on ${P.straitNg}`, 200);
  } else {
    proxy = await startRtpengine();
  }
  kamailio = await startKamailio();
  await run.launchChromium();
  if (BUNDLE_POLICY !== 'page') {
    // Every RTCPeerConnection the page makes gets this bundlePolicy instead of the page's own.
    await run.context.addInitScript((policy) => {
      const Orig = window.RTCPeerConnection;
      function Wrapped(config, ...rest) { return new Orig({ ...(config || {}), bundlePolicy: policy }, ...rest); }
      Wrapped.prototype = Orig.prototype;
      Object.setPrototypeOf(Wrapped, Orig);
      window.RTCPeerConnection = Wrapped;
    }, BUNDLE_POLICY);
  }

  const registered = await caseRun('1', `register alice over ws://127.0.0.1:${P.kamWs} (Kamailio)`, async () => {
    tab = await run.openPage('alice', `http://127.0.0.1:${P.straitWs}/`);
    const r = await withTimeout(tab.evaluate((o) => window.strait.register(o),
      { ws: `ws://127.0.0.1:${P.kamWs}`, uri: 'sip:alice@127.0.0.1', password: 'unused' }), 15000, 'register');
    if (!r.ok) throw new Error(`REGISTER through Kamailio: ${JSON.stringify(r)}`);
    return `page from strait http://127.0.0.1:${P.straitWs}/, registered at Kamailio; bundlePolicy ` +
      (BUNDLE_POLICY === 'page' ? "the page's (max-bundle)" : BUNDLE_POLICY);
  });
  if (!registered) return;
  await caseRun('2', `browser->legacy through Kamailio + ${MEDIA}, browser hangs up`, browserToLegacy);
  await caseRun('3', `legacy->browser through Kamailio + ${MEDIA}, legacy hangs up`, legacyToBrowser);
}

function writeNgLog() {
  const text = ngCommands().filter((e) => e.command !== 'ping' && e.command !== 'list').map((e) => `--- ${e.command}\n${e.text}\n`).join('');
  try {
    writeFileSync(join(run.tmp, 'ng-requests.log'), text);
    if (MEDIA === 'rtpengine') writeFileSync(join(run.tmp, 'rtpengine.log'), proxyText);
  } catch { /* best effort */ }
  if (process.env.E2E_SHOW_NG) process.stdout.write(`--- ng commands the proxy logged (${MEDIA}) ---\n${text}`);
}

const started = Date.now();
const what = `e2e kamailio --media ${MEDIA}`;
const kamailioLog = () => (kamailio ? `--- kamailio output (last 30 kB) ---\n${kamailio.output.slice(-30000)}\n` : '') +
  (proxy && MEDIA === 'rtpengine' ? `--- rtpengine output (last 20 kB) ---\n${proxy.output.slice(-20000)}\n` : '');
main().then(
  () => {
    writeNgLog();
    const ok = failures === 0 && lines.length === 3;
    run.finish(ok, [`${what}: ${ok ? 'PASS' : 'FAIL'} (${lines.length - failures} of ${lines.length} cases passed; ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s)`], ok ? '' : kamailioLog());
  },
  (e) => {
    writeNgLog();
    run.finish(false, [`${what}: FAIL (${e && e.message ? e.message : e}; ${lines.length - failures} of ` +
      `${lines.length} cases passed before)`], kamailioLog());
  },
);
