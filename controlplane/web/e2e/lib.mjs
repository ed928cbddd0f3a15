// Shared by Strait's browser end-to-end tests (register.mjs, call.mjs): a temp directory, strait started on a
// generated configuration, Debian's Chromium driven by playwright-core, bounded waits, and cleanup that stops
// everything started (strait and every helper process run detached in their own process group and are killed as
// a group) whatever way the test ends.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const webDir = resolve(here, '..');
export const repo = resolve(webDir, '..', '..');
export const straitBin = process.env.STRAIT_BIN || join(repo, 'target', 'debug', 'strait');
export const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';

/** Rejects with "<what>: timed out after <ms> ms" unless `promise` settles first. */
export function withTimeout(promise, ms, what) {
  let t;
  const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` (sync or async) every `everyMs` until it returns a truthy value or `ms` pass; returns the value or
 * throws "<what>: not true after <ms> ms (last: ...)". */
export async function until(fn, ms, what, everyMs = 100) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() >= end) throw new Error(`${what}: not true after ${ms} ms (last: ${JSON.stringify(last)})`);
    await sleep(everyMs);
  }
}

function isRunning(p) {
  return p && p.exitCode === null && p.signalCode === null;
}

/** One test run: temp dir, processes, browser; `finish` cleans up, prints and exits. */
export class Run {
  constructor(name, overallMs) {
    this.name = name;
    this.tmp = mkdtempSync(join(tmpdir(), `strait-e2e-${name}-`));
    this.shm = `/dev/shm/strait-e2e-${name}-${process.pid}-${Date.now()}`;
    this.strait = null;
    this.straitLog = '';
    this.procs = new Set();
    this.context = null;
    this.pageLogs = new Map();
    this.finished = false;
    process.on('exit', () => this.cleanupSync());
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(sig, () => { this.finish(false, [`e2e ${name}: FAIL (${sig})`]); });
    }
    const overall = setTimeout(() => {
      this.finish(false, [`e2e ${name}: FAIL (overall timeout ${overallMs} ms)`]);
    }, overallMs);
    overall.unref();
  }

  /** Spawns a helper process detached in its own group, remembered for cleanup; output is collected. */
  spawnTracked(bin, args, opts = {}) {
    const p = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    p.output = '';
    const keep = (buf) => {
      p.output += buf.toString();
      if (p.output.length > 200000) p.output = p.output.slice(-100000);
    };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    p.exited = new Promise((r) => p.once('exit', (code, signal) => r({ code, signal })));
    p.once('error', (e) => { p.output += `spawn error: ${e.message}\n`; });
    this.procs.add(p);
    p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** Stops a tracked process group: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(p, graceMs = 2000) {
    if (!p) return;
    if (isRunning(p)) {
      try { process.kill(-p.pid, 'SIGTERM'); } catch { /* already gone */ }
      await Promise.race([p.exited, sleep(graceMs)]);
    }
    // The group too, so children (strait's data plane) go even if the leader is gone.
    try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
  }

  /** Writes a config file from `sections` ({ section: { key: value } }; state_dir and media.shm are added) and
   * starts strait; resolves with the { ws, wss, udp, ... } listener addresses once every transport in `wanted` is
   * listening. */
  async startStrait(sections, wanted, ms = 20000) {
    const state = join(this.tmp, 'state');
    mkdirSync(state, { recursive: true });
    const config = join(this.tmp, 'strait.toml');
    const lines = [`state_dir = ${JSON.stringify(state)}`];
    const all = { ...sections, media: { ...(sections.media || {}), shm: this.shm } };
    for (const [section, keys] of Object.entries(all)) {
      lines.push(`[${section}]`);
      for (const [k, v] of Object.entries(keys)) lines.push(`${k} = ${typeof v === 'string' ? JSON.stringify(v) : v}`);
    }
    writeFileSync(config, lines.join('\n') + '\n');
    this.configPath = config;
    this.strait = this.spawnTracked(straitBin, ['--config', config]);
    const s = this.strait;
    return withTimeout(new Promise((res, rej) => {
      const check = () => {
        this.straitLog = s.output;
        const found = {};
        for (const m of s.output.matchAll(/listening sip\+(\w+) (\S+)/g)) found[m[1]] = m[2];
        if (wanted.every((t) => found[t])) res(found);
      };
      s.stdout.on('data', check);
      s.stderr.on('data', check);
      s.once('error', rej);
      s.once('exit', (code, sig) => rej(new Error(`strait exited early (code ${code}, signal ${sig})`)));
    }), ms, `waiting for strait to listen on ${wanted.join(', ')}`);
  }

  /** Launches Chromium with fake media devices and certificate errors ignored (strait's WSS certificate is
   * self-signed). */
  async launchChromium(ms = 20000) {
    const userData = join(this.tmp, 'chromium-profile');
    mkdirSync(userData);
    this.context = await withTimeout(chromium.launchPersistentContext(userData, {
      executablePath: chromiumBin,
      headless: true,
      ignoreHTTPSErrors: true,
      args: [
        '--no-sandbox', '--headless', '--disable-gpu', '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream', '--ignore-certificate-errors', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--allow-loopback-in-peer-connection', '--disable-quic',
        '--no-first-run', '--autoplay-policy=no-user-gesture-required',
      ],
    }), ms, 'launching chromium');
    return this.context;
  }

  /** Opens `url` (the page as strait serves it) in a new tab named `label`; collects its console (JsSIP debug)
   * and every WebSocket frame it receives (tab.sipIn: [{at, text}]), waits for window.strait and enables
   * JsSIP's debug output. */
  async openPage(label, url, ms = 15000) {
    const tab = await this.context.newPage();
    this.pageLogs.set(label, '');
    tab.sipIn = [];
    tab.on('console', (m) => {
      const line = m.text().replace(/%c/g, '').replace(/ ?color: (#[0-9A-Fa-f]{6}|inherit)/g, '');
      this.pageLogs.set(label, this.pageLogs.get(label) + line + '\n');
    });
    tab.on('pageerror', (e) => this.pageLogs.set(label, this.pageLogs.get(label) + `page error: ${e.message}\n`));
    tab.on('websocket', (ws) => {
      ws.on('framereceived', (f) => {
        if (typeof f.payload === 'string') tab.sipIn.push({ at: Date.now(), text: f.payload });
      });
    });
    const resp = await withTimeout(tab.goto(url), ms, `loading ${url}`);
    if (!resp || resp.status() !== 200) throw new Error(`loading ${url}: HTTP ${resp ? resp.status() : 'no response'}`);
    const ready = await withTimeout(tab.waitForFunction(() => !!window.strait), ms, `waiting for window.strait on ${url}`);
    await ready.dispose();
    const missing = await tab.evaluate(() => window.strait.missing || null);
    if (missing) throw new Error(`${url}: ${missing}`);
    await tab.evaluate(() => window.JsSIP.debug.enable('JsSIP:*'));
    return tab;
  }

  /** Status codes of SIP responses to `method` the tab received over its WebSocket since `since` (ms epoch). */
  static responsesSeen(tab, method, since = 0) {
    const out = [];
    for (const f of tab.sipIn) {
      if (f.at < since) continue;
      const m = f.text.match(/^SIP\/2\.0 (\d{3})/);
      const cseq = f.text.match(/^CSeq:\s*\d+\s+(\w+)/im);
      if (m && cseq && cseq[1].toUpperCase() === method) out.push(Number(m[1]));
    }
    return out;
  }

  async cleanup() {
    if (this.context) {
      const c = this.context;
      this.context = null;
      await Promise.race([c.close().catch(() => {}), sleep(5000)]);
    }
    const procs = [...this.procs].filter((p) => p !== this.strait);
    await Promise.all(procs.map((p) => this.stop(p, 1000)));
    await this.stop(this.strait, 3000);
    this.cleanupSync();
  }

  cleanupSync() {
    for (const p of this.procs) { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ } }
    if (this.strait) { try { process.kill(-this.strait.pid, 'SIGKILL'); } catch { /* already gone */ } }
    if (!process.env.E2E_KEEP_TMP) {
      try { rmSync(this.tmp, { recursive: true, force: true }); } catch { /* best effort */ }
    }
    try { rmSync(this.shm, { force: true }); } catch { /* best effort */ }
  }

  /** Cleans up, prints `lines` (and the logs if failed) and exits 0 or 1. */
  async finish(ok, lines, extraLogs = '') {
    if (this.finished) return;
    this.finished = true;
    if (this.strait) this.straitLog = this.strait.output;
    await this.cleanup();
    for (const l of lines) console.log(l);
    if (!ok) {
      if (extraLogs) process.stderr.write(extraLogs);
      if (this.straitLog) process.stderr.write('--- strait output ---\n' + this.straitLog.slice(-30000));
      for (const [label, log] of this.pageLogs) {
        if (log) process.stderr.write(`--- page ${label} console (JsSIP debug, last 30 kB) ---\n` + log.slice(-30000));
      }
    }
    process.exit(ok ? 0 : 1);
  }
}
