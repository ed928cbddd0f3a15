// End-to-end calls between the web phone (JsSIP in headless Chromium) and a legacy SIP party (SIPp) through Strait.
//
// One strait instance (WS 127.0.0.1:17080, WSS :17443, UDP :17060; next hop sip:127.0.0.1:17090 where the SIPp
// callee listens; no-answer timeout 6 s; media ports 21000-21999), the page loaded from strait itself, and these
// cases in sequence, each printed as one PASS/FAIL line with its figures:
//   1  register alice over WS (page over http) and bob over WSS (page over https)
//   2  browser -> legacy, PCMU: alice calls sip:1234@127.0.0.1, the SIPp callee answers PCMU; ~4 s of media;
//      the browser hangs up and SIPp must see the BYE
//   3  legacy -> browser, PCMU: SIPp calls sip:alice@127.0.0.1:17060, the page answers; ~4 s of media; SIPp
//      hangs up and the page must see the call end
//   4a browser -> legacy with the callee answering PCMA only
//   4b legacy -> browser with the caller offering PCMA only (to bob, registered over WSS)
//   4c browser -> legacy with the page offering Opus only (setCodecPreferences) and the callee answering PCMU:
//      Strait transcodes; the browser must receive and send Opus, the legacy socket > 50 PCMU packets with
//      audible content (the mean RMS is reported)
//   5  a wrong password: REGISTER fails with 403
//   6  SIPp calls sip:nobody@127.0.0.1:17060: 404
//   7  the callee rings and never answers: the browser's call fails 408 about no_answer_timeout_s after the
//      INVITE, and SIPp receives a CANCEL (on the INVITE's branch), answers 487 and gets the ACK
//   8  the browser hangs up 1 s after the 180: the page gets 487 for its INVITE, SIPp gets the CANCEL
// Media on the legacy side is this script's own UDP socket (rtp.mjs), named in SIPp's SDP with -key: it echoes
// what it receives (browser -> legacy calls) or sends a 1 kHz G.711 tone (legacy -> browser calls), and counts.
// The browser side is checked with getStats() (window.strait.stats()): > 50 packets received with audio energy,
// > 50 sent; the legacy socket must receive > 50 packets. After every case no data-plane leg may remain
// (strait-dpctl counters: the legs= of every worker sum to 0).
//
// `node call.mjs --selftest` needs neither strait nor a browser: it checks the G.711 code and plays the SIPp
// scenarios against each other on loopback with the media sockets, so a failure of the real run is Strait's.
//
// Exit status 0 when every case passed, 1 otherwise. Every wait is bounded; strait, SIPp and the browser are
// stopped in every case. Run it inside a network namespace with only loopback (scripts/e2e.sh does).
//
// Environment (all optional):
//   STRAIT_BIN      strait binary (default <repo>/target/debug/strait; strait-dataplane and strait-dpctl beside it)
//   STRAIT_DPCTL    strait-dpctl binary (default: beside STRAIT_BIN)
//   SIPP            SIPp binary (default: sipp, Debian package sip-tester)
//   CHROMIUM        browser executable (default: /usr/bin/chromium)
//   E2E_TIMEOUT_MS  overall timeout (default 300000)
//   E2E_CASES       comma-separated case names to run (default: all), e.g. "1,2,6"; 1 always runs first
//   E2E_KEEP_TMP    keep the temp directory (config, SIPp traces) for inspection

import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Run, withTimeout, until, sleep, straitBin } from './lib.mjs';
import { LegacyMedia, g711SelfCheck } from './rtp.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const sippDir = join(here, 'sipp');
const sippBin = process.env.SIPP || 'sipp';
const dpctlBin = process.env.STRAIT_DPCTL || join(dirname(straitBin), 'strait-dpctl');
const selftest = process.argv.includes('--selftest');
const overallMs = Number(process.env.E2E_TIMEOUT_MS || 300000);

const P = {
  ws: 17080, wss: 17443, udp: 17060, // strait
  uas: 17090, uac: 17091, // SIPp as callee (strait's next hop) and as caller
  uasMedia: 17300, uacMedia: 17310, // SIPp's own (unused) media ports, kept apart
  legacy: 17100, // + 2 per case: this script's RTP/RTCP sockets
  mediaMin: 21000, mediaMax: 21999, // strait's media ports
};
const NO_ANSWER_S = 6;
const HOLD_MS = 4000; // media time per call
const CALLEE_ERROR_HINT = 'strait answered the call itself';

const run = new Run(selftest ? 'call-selftest' : 'call', overallMs);
const lines = [];
let failures = 0;
let legacyPort = P.legacy;

// ------------------------------------------------------------------------------------------------------------
// SIPp

/** Starts SIPp with one of our scenarios, its traces in the temp dir. `target` (host:port) for a caller. */
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

const readOr = (path) => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };

/** The first match of `re` in SIPp's <log> output, or null. */
function sippLog(p, re) {
  return readOr(p.files.logs).match(re);
}

/** First lines of the SIP messages SIPp received and sent, in order: ["<- SIP/2.0 100 Trying", "-> ACK ..."]. */
function sippTrace(p) {
  const out = [];
  const re = /message (received|sent) (?:\[\d+\] bytes :|\(\d+ bytes\):)\s*\n+([^\r\n]+)/g;
  for (const m of readOr(p.files.messages).matchAll(re)) out.push(`${m[1] === 'received' ? '<-' : '->'} ${m[2].trim()}`);
  return out;
}

function sippDescribe(p) {
  const trace = sippTrace(p);
  // SIPp's error log quotes whole messages; keep its own sentences.
  const errors = [...readOr(p.files.errors).matchAll(/(Aborting call[^\n]*|[^\n]*while expecting[^\n]*|[^\n]*timed out[^\n]*)/g)]
    .slice(0, 2).map((m) => m[1].trim().slice(0, 200)).join(' | ');
  return `SIPp ${p.label} exit ${p.exitCode ?? 'running'}; saw [${trace.join(', ')}]` + (errors ? `; errors: ${errors}` : '');
}

/** Throws if SIPp already ended (its scenario cannot go on). */
function sippAlive(p, what) {
  if (p && p.exitCode !== null) throw new Error(`SIPp ended before ${what}: ${sippDescribe(p)}`);
  if (p && p.signalCode !== null) throw new Error(`SIPp killed (${p.signalCode}) before ${what}`);
}

/** Waits for SIPp to finish its scenario successfully (exit status 0). */
async function sippDone(p, ms, what) {
  let r;
  try {
    r = await withTimeout(p.exited, ms, what);
  } catch {
    throw new Error(`${what}: timed out after ${ms} ms; ${sippDescribe(p)}`);
  }
  if (r.code !== 0) throw new Error(`${what}: ${sippDescribe(p)}`);
}

/** Whether a UDP socket is bound to 127.0.0.1:port (/proc/net/udp of this network namespace). */
function udpBound(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readOr('/proc/net/udp').split('\n').some((l) => l.trim().split(/\s+/)[1] === `0100007F:${hex}`);
}

async function sippListening(p, port) {
  await until(() => { sippAlive(p, `listening on ${port}`); return udpBound(port); }, 5000, `SIPp listening on ${port}`, 50);
}

// ------------------------------------------------------------------------------------------------------------
// The page

const pageState = (tab) => tab.evaluate(() => window.strait.state());

/** Waits until the page's current call satisfies `pred`; fails early if SIPp ends first. */
async function waitCall(tab, pred, ms, what, sipp) {
  return until(async () => {
    const s = await pageState(tab);
    if (s.call && pred(s.call)) return s;
    if (sipp) sippAlive(sipp, what);
    return null;
  }, ms, what, 100);
}

function describeFailed(f) {
  return `${f.status || ''} ${f.cause} (${f.originator})`.trim();
}

/** Polls getStats() for the media phase; returns the last non-null stats. Ends when the thresholds are met and
 * at least `minMs` passed, when the call ended, or after `maxMs`. `onFlowing` runs once, when the thresholds are
 * first met (media flows both ways). */
async function mediaPhase(tab, media, { minMs, maxMs, sipp, onFlowing }) {
  const t0 = Date.now();
  let last = null;
  let flowing = false;
  for (;;) {
    const s = await tab.evaluate(() => window.strait.stats());
    if (s) last = s;
    const st = await pageState(tab);
    if (st.ended) break;
    if (sipp && sipp.exitCode !== null && sipp.exitCode !== 0) break;
    const ok = mediaProblems(last, media).length === 0;
    if (ok && !flowing) {
      flowing = true;
      if (onFlowing) await onFlowing();
    }
    const elapsed = Date.now() - t0;
    if (ok && elapsed >= minMs) break;
    if (elapsed >= maxMs) break;
    await sleep(250);
  }
  return last;
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
    const port = Number(src.split(':').pop());
    if (port < P.mediaMin || port > P.mediaMax) p.push(`legacy RTP came from ${src}, not from strait's media ports`);
  }
  return p;
}

function mediaFigures(s, media) {
  const inb = (s && s.inbound) || {};
  const out = (s && s.outbound) || {};
  const energy = typeof inb.totalAudioEnergy === 'number' ? inb.totalAudioEnergy.toFixed(3) : '-';
  return `browser rx ${inb.packetsReceived ?? 0} (energy ${energy}, level ${inb.audioLevel ?? '-'}, ` +
    `${s && s.codec ? s.codec : '-'}), tx ${out.packetsSent ?? 0} (${s && s.sendCodec ? s.sendCodec : '-'}); ${media.summary()}`;
}

function inMediaRange(port) {
  return Number(port) >= P.mediaMin && Number(port) <= P.mediaMax;
}

// ------------------------------------------------------------------------------------------------------------
// The data plane

/** The legs the data-plane workers hold now (strait-dpctl counters, attached read-only beside strait): the sum
 * of the `legs=N` of its `worker N:` lines; { error } when it cannot tell. */
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

/** Polls until the workers hold no legs (a few seconds); null when none remain, else why not. */
async function legsLeft() {
  const end = Date.now() + 5000;
  for (;;) {
    const r = await dpctlLegs();
    if (r.legs === 0) return null;
    if (Date.now() >= end) return r.error || `${r.legs} data-plane legs remain`;
    await sleep(250);
  }
}

/** During a call the data plane must hold its legs (this also proves the after-case check can see them). */
async function legsDuringCall(problems) {
  const r = await dpctlLegs();
  if (r.error) problems.push(`during the call: ${r.error}`);
  else if (!(r.legs > 0)) problems.push('during the call the data plane held no legs');
  return r.error ? '?' : r.legs;
}

// ------------------------------------------------------------------------------------------------------------
// Cases

const tabs = {};

async function caseRun(name, title, fn) {
  const wanted = process.env.E2E_CASES ? process.env.E2E_CASES.split(',').map((s) => s.trim()) : null;
  if (wanted && !wanted.includes(name) && name !== '1') return;
  const ctx = { sipps: [], media: [], notes: [] };
  const t0 = Date.now();
  let figures = '';
  let error = null;
  try {
    figures = await withTimeout(fn(ctx), 90000, 'case');
  } catch (e) {
    error = e && e.message ? e.message : String(e);
  }
  // Whatever happened: no call left on the pages, SIPp stopped, sockets closed.
  for (const tab of Object.values(tabs)) await tab.evaluate(() => window.strait.hangup && window.strait.hangup()).catch(() => {});
  for (const s of ctx.sipps) await run.stop(s, 1000);
  for (const m of ctx.media) m.close();
  if (!selftest) {
    const legs = await legsLeft();
    if (legs) error = error ? `${error}; and after the case: ${legs}` : `after the case: ${legs}`;
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const notes = ctx.notes.length ? `; note: ${ctx.notes.join('; ')}` : '';
  if (error) {
    failures++;
    const line = `case ${name} ${title}: FAIL (${error}${figures ? `; ${figures}` : ''}${notes}; ${secs} s)`;
    lines.push(line);
    console.log(line);
    for (const s of ctx.sipps) process.stderr.write(`--- ${s.label} ---\n${sippDescribe(s)}\nlog: ${readOr(s.files.logs).trim()}\n`);
  } else {
    const line = `case ${name} ${title}: PASS (${figures}${notes}; ${secs} s)`;
    lines.push(line);
    console.log(line);
  }
}

function nextLegacyPort() {
  const p = legacyPort;
  legacyPort += 2;
  return p;
}

/** Browser -> legacy: the page calls `callee`; SIPp answers with `codec` only; media; the browser hangs up.
 * `browserCodecs` (e.g. ['opus']) limits what the page offers; then the browser's codec both ways must be the
 * first of them and every packet at the legacy socket `codec` (Strait transcodes). */
async function browserToLegacy(ctx, tab, callee, codec, browserCodecs = null) {
  const media = await new LegacyMedia({ port: nextLegacyPort(), codec, mode: 'echo' }).bind();
  ctx.media.push(media);
  const sipp = startSipp(`${callee}-uas`, {
    scenario: 'uas_answer.xml', port: P.uas, mediaPort: P.uasMedia,
    keys: { audio_ip: '127.0.0.1', audio_port: media.port, audio_pt: media.codec.pt, audio_codec: codec },
  });
  ctx.sipps.push(sipp);
  await sippListening(sipp, P.uas);
  const t0 = Date.now();
  await tab.evaluate(([t, codecs]) => window.strait.call(t, codecs ? { codecs } : undefined),
    [`sip:${callee}@127.0.0.1`, browserCodecs]);
  const st = await waitCall(tab, (c) => c.confirmed || c.failed || c.ended, 15000, 'the call to be answered');
  if (st.call.failed) {
    throw new Error(`the browser's INVITE failed: ${describeFailed(st.call.failed)}` +
      (sippLog(sipp, /OFFER/) ? '' : `; the SIPp callee never got an INVITE (${CALLEE_ERROR_HINT})`));
  }
  if (!st.call.confirmed) throw new Error(`call ended before it was confirmed: ${JSON.stringify(st.call)}`);
  const setup = st.call.confirmed - t0;
  const problems = [];
  const offer = sippLog(sipp, /OFFER callee=(\S+) ip=(\S+) port=(\d+) pts=([\d ]+)/);
  if (!offer) problems.push('SIPp logged no offer');
  else {
    if (offer[1] !== callee) problems.push(`the callee got Request-URI user ${offer[1]}, want ${callee}`);
    if (!inMediaRange(offer[3])) problems.push(`strait offered media port ${offer[3]}, outside ${P.mediaMin}-${P.mediaMax}`);
  }
  let legs = 'not sampled';
  const onFlowing = async () => { legs = await legsDuringCall(problems); };
  const stats = await mediaPhase(tab, media, { minMs: HOLD_MS, maxMs: HOLD_MS + 8000, sipp, onFlowing });
  problems.push(...mediaProblems(stats, media));
  let transcoded = '';
  if (browserCodecs) {
    const want = `audio/${browserCodecs[0]}`.toLowerCase();
    const offered = (await pageState(tab)).events.filter((e) => /codecs offered|cannot restrict/.test(e)).pop();
    if (!offered || /cannot restrict/.test(offered)) problems.push(`the page could not restrict its offer: ${offered || 'no log line'}`);
    const rxCodec = stats && stats.codec ? stats.codec.toLowerCase() : '-';
    const txCodec = stats && stats.sendCodec ? stats.sendCodec.toLowerCase() : '-';
    if (rxCodec !== want) problems.push(`browser received ${rxCodec}, want ${want}`);
    if (txCodec !== want) problems.push(`browser sent ${txCodec}, want ${want}`);
    if (offer && !offer[4].trim().split(/\s+/).includes(String(media.codec.pt))) {
      problems.push(`strait offered the callee pts ${offer[4].trim()}, without ${media.codec.pt} (${codec})`);
    }
    if (!(media.rxAudio > 50)) problems.push(`legacy socket received ${media.rxAudio} packets of pt ${media.codec.pt} (want > 50)`);
    const other = [...media.rxPts.keys()].filter((pt) => pt !== media.codec.pt && pt !== 101);
    if (other.length) problems.push(`legacy socket received payload types ${other.join(',')} besides ${media.codec.pt}`);
    // The browser's fake microphone is a beep; Strait's Opus decode + G.711 encode must keep it audible.
    const mean = media.rxAudio ? media.rxSumRms / media.rxAudio : 0;
    if (!(media.rxPeakRms > 100)) problems.push(`the ${codec} audio at the legacy socket is near silence (peak RMS ${media.rxPeakRms.toFixed(0)})`);
    transcoded = `; page offered ${offered ? offered.replace(/^.*codecs offered: /, '') : '-'}; ${codec} at the legacy socket mean RMS ${mean.toFixed(0)}, peak ${media.rxPeakRms.toFixed(0)}`;
  }
  await tab.evaluate(() => window.strait.hangup());
  const end = await waitCall(tab, (c) => c.ended || c.failed, 5000, 'the call to end after hanging up');
  if (!end.call.ended) problems.push(`after hanging up: ${JSON.stringify(end.call.failed)}`);
  try {
    await sippDone(sipp, 10000, 'SIPp seeing the BYE');
    if (!sippLog(sipp, /BYE received/)) problems.push('SIPp logged no BYE');
  } catch (e) { problems.push(e.message); }
  const figures = `setup ${setup} ms; offer ${offer ? `${offer[2]}:${offer[3]} pt ${offer[4]}` : '-'}; ${mediaFigures(stats, media)}; data-plane legs during the call ${legs}${transcoded}; BYE seen by SIPp`;
  if (problems.length) throw new Error(`${problems.join('; ')} [${figures}]`);
  return figures;
}

/** Legacy -> browser: SIPp calls `user` offering `codec` only; the page answers; media (our tone); SIPp hangs up. */
async function legacyToBrowser(ctx, tab, user, codec) {
  const media = await new LegacyMedia({ port: nextLegacyPort(), codec, mode: 'tone' }).bind();
  ctx.media.push(media);
  const sipp = startSipp(`${user}-uac`, {
    scenario: 'uac_call.xml', target: `127.0.0.1:${P.udp}`, service: user, port: P.uac, mediaPort: P.uacMedia,
    hold: HOLD_MS, keys: { audio_ip: '127.0.0.1', audio_port: media.port, audio_pt: media.codec.pt, audio_codec: codec },
  });
  ctx.sipps.push(sipp);
  const t0 = Date.now();
  await until(async () => { sippAlive(sipp, 'the page got the call'); return (await pageState(tab)).incoming; },
    10000, 'an incoming call on the page');
  const ring = Date.now() - t0;
  await tab.evaluate(() => window.strait.answer());
  const answer = await until(() => { sippAlive(sipp, "strait's 200 OK"); return sippLog(sipp, /ANSWER ip=(\S+) port=(\d+) pts=([\d ]+)/); },
    10000, "strait's 200 OK at the SIPp caller", 50);
  media.startTone(answer[1], Number(answer[2]));
  const problems = [];
  if (!inMediaRange(answer[2])) problems.push(`strait answered with media port ${answer[2]}, outside ${P.mediaMin}-${P.mediaMax}`);
  await waitCall(tab, (c) => c.confirmed || c.ended || c.failed, 5000, 'the ACK at the page');
  let legs = 'not sampled';
  const onFlowing = async () => { legs = await legsDuringCall(problems); };
  const stats = await mediaPhase(tab, media, { minMs: Infinity, maxMs: HOLD_MS + 8000, sipp, onFlowing });
  problems.push(...mediaProblems(stats, media));
  try {
    const end = await waitCall(tab, (c) => c.ended || c.failed, 8000, "the call to end on SIPp's BYE");
    if (!end.call.ended || end.call.ended.originator !== 'remote') problems.push(`the page's call ended ${JSON.stringify(end.call.ended || end.call.failed)}`);
  } catch (e) { problems.push(e.message); }
  try {
    await sippDone(sipp, 10000, "SIPp's BYE answered");
  } catch (e) { problems.push(e.message); }
  const figures = `ringing after ${ring} ms; answer ${answer[1]}:${answer[2]} pt ${answer[3]}; ${mediaFigures(stats, media)}; data-plane legs during the call ${legs}; page saw the BYE`;
  if (problems.length) throw new Error(`${problems.join('; ')} [${figures}]`);
  return figures;
}

async function register(tab, uri, password) {
  return withTimeout(tab.evaluate((o) => window.strait.register(o), { uri, password }), 15000, `register ${uri}`);
}

async function main() {
  // The no-answer timeout is configurable once the B2BUA has it; an older strait refuses unknown keys.
  const defaults = execFileSync(straitBin, ['--print-default-config'], { encoding: 'utf8', timeout: 10000 });
  const routing = { default_next_hop: `sip:127.0.0.1:${P.uas}` };
  if (/^\s*no_answer_timeout_s\s*=/m.test(defaults)) routing.no_answer_timeout_s = NO_ANSWER_S;
  else console.log(`note: this strait has no routing.no_answer_timeout_s; case 7 expects ${NO_ANSWER_S} s`);
  await run.startStrait({
    sip: { ws: `127.0.0.1:${P.ws}`, wss: `127.0.0.1:${P.wss}`, udp: `127.0.0.1:${P.udp}`, tcp: 'off' },
    media: { port_min: P.mediaMin, port_max: P.mediaMax },
    routing,
  }, ['ws', 'wss', 'udp']);
  await run.launchChromium();

  await caseRun('1', 'register over WS and WSS', async () => {
    tabs.ws = await run.openPage('ws', `http://127.0.0.1:${P.ws}/`);
    tabs.wss = await run.openPage('wss', `https://127.0.0.1:${P.wss}/`);
    if (!('call' in await pageState(tabs.ws))) throw new Error('the page strait serves has no state().call: phone.js older than this test');
    const a = await register(tabs.ws, 'sip:alice@127.0.0.1', 'alice-secret');
    const b = await register(tabs.wss, 'sip:bob@127.0.0.1', 'bob-secret');
    if (!a.ok || !b.ok) throw new Error(`alice over WS: ${JSON.stringify(a)}; bob over WSS: ${JSON.stringify(b)}`);
    return `alice over ws://127.0.0.1:${P.ws}/, bob over wss://127.0.0.1:${P.wss}/, pages served by strait`;
  });
  if (!tabs.ws || !tabs.wss) return;

  await caseRun('2', 'browser->legacy PCMU, browser hangs up', (ctx) => browserToLegacy(ctx, tabs.ws, '1234', 'PCMU'));
  await caseRun('3', 'legacy->browser PCMU, legacy hangs up', (ctx) => legacyToBrowser(ctx, tabs.ws, 'alice', 'PCMU'));
  await caseRun('4a', 'browser->legacy, callee answers PCMA only', (ctx) => browserToLegacy(ctx, tabs.ws, '1244', 'PCMA'));
  await caseRun('4b', 'legacy->browser (bob over WSS), caller offers PCMA only', (ctx) => legacyToBrowser(ctx, tabs.wss, 'bob', 'PCMA'));
  await caseRun('4c', 'browser->legacy, browser offers Opus only, callee answers PCMU: strait transcodes',
    (ctx) => browserToLegacy(ctx, tabs.ws, '1245', 'PCMU', ['opus']));

  await caseRun('5', 'wrong password', async () => {
    tabs.bad = await run.openPage('bad', `http://127.0.0.1:${P.ws}/`);
    const r = await register(tabs.bad, 'sip:alice@127.0.0.1', 'not-alice-secret');
    if (r.ok !== false || r.status !== 403) throw new Error(`expected REGISTER to fail 403, got ${JSON.stringify(r)}`);
    return `REGISTER -> ${r.status} (${r.cause})`;
  });

  await caseRun('6', 'unknown callee', async (ctx) => {
    const sipp = startSipp('nobody-uac', {
      scenario: 'uac_expect_404.xml', target: `127.0.0.1:${P.udp}`, service: 'nobody', port: P.uac, mediaPort: P.uacMedia,
      keys: { audio_ip: '127.0.0.1', audio_port: nextLegacyPort(), audio_pt: 0, audio_codec: 'PCMU' },
    });
    ctx.sipps.push(sipp);
    await sippDone(sipp, 15000, 'SIPp calling sip:nobody@127.0.0.1 expecting 404');
    const fin = sippLog(sipp, /FINAL 404 \(([^)]*)\)/);
    return `INVITE sip:nobody -> 404 ${fin ? fin[1] : ''}, ACKed`;
  });

  for (const [name, callee, hangAfterMs] of [['7', '1235', null], ['8', '1236', 1000]]) {
    const title = hangAfterMs === null ? `callee never answers (no_answer_timeout_s = ${NO_ANSWER_S})` : 'browser cancels while it rings';
    await caseRun(name, title, async (ctx) => {
      const sipp = startSipp(`${callee}-ring`, {
        scenario: 'uas_ring_cancel.xml', port: P.uas, mediaPort: P.uasMedia,
        keys: { audio_ip: '127.0.0.1', audio_port: nextLegacyPort(), audio_pt: 0, audio_codec: 'PCMU' },
      });
      ctx.sipps.push(sipp);
      await sippListening(sipp, P.uas);
      const tab = tabs.ws;
      const t0 = Date.now();
      await tab.evaluate((t) => window.strait.call(t), `sip:${callee}@127.0.0.1`);
      const problems = [];
      let figures;
      const ringing = await waitCall(tab, (c) => c.progress.includes(180) || c.failed || c.ended, 10000, 'the 180 at the page')
        .catch((e) => { problems.push(e.message); return null; });
      if (ringing && (ringing.call.failed || ringing.call.ended)) {
        throw new Error(`the browser's call ended before ringing: ${JSON.stringify(ringing.call.failed || ringing.call.ended)}` +
          (sippLog(sipp, /OFFER/) ? '' : `; the SIPp callee never got an INVITE (${CALLEE_ERROR_HINT})`));
      }
      const rang = ringing && ringing.call.progress.includes(180);
      if (hangAfterMs === null) {
        const st = await waitCall(tab, (c) => c.failed || c.ended || c.confirmed, (NO_ANSWER_S + 6) * 1000, 'the call to fail');
        const f = st.call.failed;
        if (!f) throw new Error(`expected the call to fail 408, it went ${JSON.stringify(st.call)}`);
        const after = f.at - t0;
        if (f.status !== 408) problems.push(`the call failed ${describeFailed(f)}, want 408`);
        if (after < NO_ANSWER_S * 1000 - 500 || after > NO_ANSWER_S * 1000 + 3000) {
          problems.push(`it failed after ${after} ms, want ${NO_ANSWER_S * 1000} ms (+3000)`);
        }
        figures = `failed ${describeFailed(f)} after ${after} ms; 180 at the page: ${rang ? 'yes' : 'no'}`;
      } else {
        await sleep(hangAfterMs); // the scripted ringing time, not a wait for a condition
        const hungAt = Date.now();
        await tab.evaluate(() => window.strait.hangup());
        const st = await waitCall(tab, (c) => c.failed || c.ended, 5000, 'the call to end after cancelling');
        const got487 = await until(() => Run.responsesSeen(tab, 'INVITE', hungAt).includes(487), 5000, '487 for the INVITE at the page')
          .then(() => true, (e) => { problems.push(e.message); return false; });
        const cancel200 = Run.responsesSeen(tab, 'CANCEL', hungAt).includes(200);
        if (!st.call.failed || st.call.failed.cause !== 'Canceled') problems.push(`the page's call ended ${JSON.stringify(st.call.failed || st.call.ended)}`);
        figures = `page: ${st.call.failed ? describeFailed(st.call.failed) : 'ended'}, 200 for the CANCEL ${cancel200 ? 'yes' : 'no'}, ` +
          `487 for the INVITE ${got487 ? 'yes' : 'no'}; 180 at the page: ${rang ? 'yes' : 'no'}`;
      }
      try {
        await sippDone(sipp, 10000, 'SIPp getting the CANCEL, answering 487 and getting the ACK');
      } catch (e) { problems.push(e.message); }
      const offer = sippLog(sipp, /OFFER callee=(\S+)/);
      if (!offer) problems.push(`the SIPp callee never got an INVITE (${CALLEE_ERROR_HINT}?)`);
      else if (offer[1] !== callee) problems.push(`the callee got Request-URI user ${offer[1]}, want ${callee}`);
      const c = sippLog(sipp, /CANCEL received invite_branch=(\S+) cancel_branch=(\S+)/);
      const a = sippLog(sipp, /ACK received invite_branch=(\S+) ack_branch=(\S+)/);
      if (c && c[1] !== c[2]) problems.push(`the CANCEL's branch ${c[2]} is not the INVITE's ${c[1]}`);
      if (a && a[1] !== a[2]) problems.push(`the 487's ACK branch ${a[2]} is not the INVITE's ${a[1]}`);
      figures += `; SIPp: CANCEL ${c ? 'yes' : 'no'}, 487 ACKed ${a ? 'yes' : 'no'}`;
      if (problems.length) throw new Error(`${problems.join('; ')} [${figures}]`);
      return figures;
    });
  }
}

// ------------------------------------------------------------------------------------------------------------
// Self-test: the scenarios against each other and the media sockets, no strait, no browser.

async function selfTestMain() {
  if (!existsSync(join(sippDir, 'uas_answer.xml'))) throw new Error(`no SIPp scenarios in ${sippDir}`);
  await caseRun('g711', 'encoder and decoder', async () => {
    const bad = g711SelfCheck();
    if (bad.length) throw new Error(bad.join('; '));
    return 'fixed points and round trips of mu-law and A-law';
  });
  for (const codec of ['PCMU', 'PCMA']) {
    await caseRun(`answer-${codec}`, 'uas_answer.xml vs uac_call.xml, tone echoed', async (ctx) => {
      const callee = await new LegacyMedia({ port: nextLegacyPort(), codec, mode: 'echo' }).bind();
      const caller = await new LegacyMedia({ port: nextLegacyPort(), codec, mode: 'tone' }).bind();
      ctx.media.push(callee, caller);
      const pt = callee.codec.pt;
      const uas = startSipp(`selftest-${codec}-uas`, {
        scenario: 'uas_answer.xml', port: P.uas, mediaPort: P.uasMedia,
        keys: { audio_ip: '127.0.0.1', audio_port: callee.port, audio_pt: pt, audio_codec: codec },
      });
      ctx.sipps.push(uas);
      await sippListening(uas, P.uas);
      const uac = startSipp(`selftest-${codec}-uac`, {
        scenario: 'uac_call.xml', target: `127.0.0.1:${P.uas}`, service: '1234', port: P.uac, mediaPort: P.uacMedia,
        hold: 3000, keys: { audio_ip: '127.0.0.1', audio_port: caller.port, audio_pt: pt, audio_codec: codec },
      });
      ctx.sipps.push(uac);
      const answer = await until(() => { sippAlive(uac, 'the answer'); return sippLog(uac, /ANSWER ip=(\S+) port=(\d+) pts=([\d ]+)/); },
        10000, 'the 200 OK at the caller', 50);
      caller.startTone(answer[1], Number(answer[2]));
      await sippDone(uac, 15000, 'the caller hanging up');
      await sippDone(uas, 5000, 'the callee seeing the BYE');
      const offer = sippLog(uas, /OFFER callee=(\S+) ip=(\S+) port=(\d+) pts=([\d ]+)/);
      const problems = [];
      if (!offer || offer[1] !== '1234' || Number(offer[3]) !== caller.port || offer[4].trim() !== `${pt} 101`) {
        problems.push(`offer logged ${offer ? offer[0] : 'none'}`);
      }
      if (Number(answer[2]) !== callee.port || answer[3].trim() !== `${pt} 101`) problems.push(`answer logged ${answer[0]}`);
      if (!sippLog(uas, /BYE received/) || !sippLog(uac, /BYE answered/)) problems.push('BYE not logged');
      if (!(callee.rx > 50 && callee.echoed > 50)) problems.push(`callee received ${callee.rx}, echoed ${callee.echoed}`);
      if (!(caller.rx > 50)) problems.push(`caller received ${caller.rx} echoes`);
      // The echo carries our tone (1 kHz at 10000 peak: RMS 7071) through encode + decode.
      const mean = caller.rxSumRms / Math.max(1, caller.rxAudio);
      if (Math.abs(mean - 7071) > 350) problems.push(`echoed tone RMS ${mean.toFixed(0)}, want about 7071`);
      if (problems.length) throw new Error(problems.join('; '));
      return `tone sent ${caller.toneSent}, callee ${callee.summary()}; caller ${caller.summary()}`;
    });
  }
  await caseRun('cancel', 'uas_ring_cancel.xml vs selftest_uac_cancel.xml', async (ctx) => {
    const uas = startSipp('selftest-ring-uas', {
      scenario: 'uas_ring_cancel.xml', port: P.uas, mediaPort: P.uasMedia,
      keys: { audio_ip: '127.0.0.1', audio_port: nextLegacyPort(), audio_pt: 0, audio_codec: 'PCMU' },
    });
    ctx.sipps.push(uas);
    await sippListening(uas, P.uas);
    const uac = startSipp('selftest-cancel-uac', {
      scenario: 'selftest_uac_cancel.xml', target: `127.0.0.1:${P.uas}`, service: '1235', port: P.uac, mediaPort: P.uacMedia,
    });
    ctx.sipps.push(uac);
    await sippDone(uac, 15000, 'the caller cancelling');
    await sippDone(uas, 5000, 'the callee answering 487');
    const c = sippLog(uas, /CANCEL received invite_branch=(\S+) cancel_branch=(\S+)/);
    const a = sippLog(uas, /ACK received invite_branch=(\S+) ack_branch=(\S+)/);
    if (!c || c[1] !== c[2] || !a || a[1] !== a[2]) throw new Error(`branches: ${c && c[0]} / ${a && a[0]}`);
    return `${sippTrace(uas).join(', ')}; CANCEL and ACK on the INVITE's branch`;
  });
  await caseRun('404', 'uac_expect_404.xml vs selftest_uas_404.xml', async (ctx) => {
    const uas = startSipp('selftest-404-uas', { scenario: 'selftest_uas_404.xml', port: P.uas, mediaPort: P.uasMedia });
    ctx.sipps.push(uas);
    await sippListening(uas, P.uas);
    const uac = startSipp('selftest-404-uac', {
      scenario: 'uac_expect_404.xml', target: `127.0.0.1:${P.uas}`, service: 'nobody', port: P.uac, mediaPort: P.uacMedia,
      keys: { audio_ip: '127.0.0.1', audio_port: nextLegacyPort(), audio_pt: 0, audio_codec: 'PCMU' },
    });
    ctx.sipps.push(uac);
    await sippDone(uac, 15000, 'the caller getting 404');
    await sippDone(uas, 5000, 'the callee getting the ACK');
    const a = sippLog(uas, /ACK received invite_branch=(\S+) ack_branch=(\S+)/);
    if (!a || a[1] !== a[2]) throw new Error(`ACK branch: ${a && a[0]}`);
    return `${sippTrace(uac).join(', ')}; ACK on the INVITE's branch`;
  });
}

const started = Date.now();
const what = selftest ? 'e2e call selftest' : 'e2e call';
(selftest ? selfTestMain() : main()).then(
  () => {
    const ok = failures === 0 && lines.length > 0;
    run.finish(ok, [`${what}: ${ok ? 'PASS' : 'FAIL'} (${lines.length - failures} of ${lines.length} cases passed; ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s)`]);
  },
  (e) => run.finish(false, [`${what}: FAIL (${e && e.message ? e.message : e}; ${lines.length - failures} of ` +
    `${lines.length} cases passed before)`]),
);
