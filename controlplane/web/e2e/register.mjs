// End-to-end: the web phone page (JsSIP) in headless Chromium REGISTERs to Strait over WS.
//
// Starts `strait --config <temp toml>`, waits for its "listening sip+ws ADDR" line, opens a temp copy of the page
// (index.html, phone.js, jssip.js) in Debian's Chromium driven by playwright-core, registers alice with the right
// password (expects success) and with a wrong one (expects registrationFailed with 403). Prints one result line and
// exits 0 on success, 1 otherwise. Everything is bounded by an overall timeout and strait and the browser are
// stopped in every case.
//
// Environment (all optional):
//   STRAIT_BIN       strait binary (default: <repo>/target/debug/strait)
//   STRAIT_CONFIG    use this config file instead of a generated one (it must enable the WS listener)
//   CHROMIUM         browser executable (default: /usr/bin/chromium)
//   E2E_TIMEOUT_MS   overall timeout (default: 60000)
// Run it inside a network namespace with only loopback (see scripts/e2e.sh).

import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '..');
const repo = resolve(webDir, '..', '..');
const straitBin = process.env.STRAIT_BIN || join(repo, 'target', 'debug', 'strait');
const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
const overallMs = Number(process.env.E2E_TIMEOUT_MS || 60000);
const stepMs = 15000;

const tmp = mkdtempSync(join(tmpdir(), 'strait-e2e-'));
const shm = `/dev/shm/strait-e2e-${process.pid}-${Date.now()}`;
let strait = null;
let context = null;
let straitLog = '';
let pageLog = '';
let finished = false;

function killStrait(signal) {
  if (strait && strait.exitCode === null && strait.signalCode === null) {
    // strait runs in its own process group (detached) together with the data plane it spawns.
    try { process.kill(-strait.pid, signal); } catch { /* already gone */ }
  }
}

function cleanupSync() {
  // The whole group, so the data plane strait started goes too even if strait itself is already gone.
  if (strait) { try { process.kill(-strait.pid, 'SIGKILL'); } catch { /* already gone */ } }
  try { rmSync(tmp, { recursive: true, force: true }); } catch { /* best effort */ }
  try { rmSync(shm, { force: true }); } catch { /* best effort */ }
}

async function cleanup() {
  if (context) {
    const c = context;
    context = null;
    await Promise.race([c.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  if (strait && strait.exitCode === null && strait.signalCode === null) {
    const exited = new Promise((r) => strait.once('exit', r));
    killStrait('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  }
  cleanupSync();
}

async function finish(ok, line) {
  if (finished) return;
  finished = true;
  await cleanup();
  console.log(line);
  if (!ok && straitLog) process.stderr.write('--- strait output ---\n' + straitLog);
  if (!ok && pageLog) process.stderr.write('--- page console (JsSIP debug) ---\n' + pageLog);
  process.exit(ok ? 0 : 1);
}

process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { finish(false, `e2e register: FAIL (${sig})`); });
}
const overall = setTimeout(() => { finish(false, `e2e register: FAIL (overall timeout ${overallMs} ms)`); }, overallMs);
overall.unref();

function withTimeout(promise, ms, what) {
  let t;
  const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

function startStrait() {
  let config = process.env.STRAIT_CONFIG;
  if (!config) {
    const state = join(tmp, 'state');
    mkdirSync(state);
    config = join(tmp, 'strait.toml');
    // Non-default ports and a private state dir and shm path, so the test never collides with a running gateway.
    writeFileSync(config, [
      `state_dir = ${JSON.stringify(state)}`,
      '[sip]',
      'ws = "127.0.0.1:18080"',
      'wss = "off"',
      'udp = "127.0.0.1:15060"',
      'tcp = "off"',
      '[media]',
      'port_min = 40000',
      'port_max = 40999',
      `shm = ${JSON.stringify(shm)}`,
      '',
    ].join('\n'));
  }
  strait = spawn(straitBin, ['--config', config], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  return withTimeout(new Promise((res, rej) => {
    const onData = (buf) => {
      straitLog += buf.toString();
      const m = straitLog.match(/listening sip\+ws (\S+)/);
      if (m) res(m[1]);
    };
    strait.stdout.on('data', onData);
    strait.stderr.on('data', onData);
    strait.once('error', rej);
    strait.once('exit', (code, sig) => rej(new Error(`strait exited early (code ${code}, signal ${sig})`)));
  }), 15000, 'waiting for strait to listen on WS');
}

async function main() {
  const started = Date.now();
  const wsAddr = await startStrait();
  const ws = `ws://${wsAddr}/`;

  // A temp copy of the page with jssip.js beside index.html, as when strait serves it at /.
  const page = join(tmp, 'page');
  mkdirSync(page);
  copyFileSync(join(webDir, 'index.html'), join(page, 'index.html'));
  copyFileSync(join(webDir, 'phone.js'), join(page, 'phone.js'));
  copyFileSync(join(webDir, 'build', 'jssip.js'), join(page, 'jssip.js'));

  const userData = join(tmp, 'chromium-profile');
  mkdirSync(userData);
  context = await withTimeout(chromium.launchPersistentContext(userData, {
    executablePath: chromiumBin,
    headless: true,
    args: [
      '--no-sandbox', '--headless', '--disable-gpu', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--allow-loopback-in-peer-connection', '--disable-quic', '--no-first-run',
    ],
  }), stepMs, 'launching chromium');
  const tab = context.pages()[0] || await context.newPage();
  // JsSIP's debug output (every SIP message) goes to the console; it is printed only if the test fails.
  tab.on('console', (m) => {
    pageLog += m.text().replace(/%c/g, '').replace(/ ?color: (#[0-9A-Fa-f]{6}|inherit)/g, '') + '\n';
  });
  await withTimeout(tab.goto(pathToFileURL(join(page, 'index.html')).href), stepMs, 'loading the page');
  await withTimeout(tab.waitForFunction(() => !!window.strait && !!window.JsSIP), stepMs, 'waiting for window.strait');
  await tab.evaluate(() => window.JsSIP.debug.enable('JsSIP:*'));
  if (await tab.evaluate(() => window.strait.state().registered)) throw new Error('registered before register()');

  const register = (password) => withTimeout(
    tab.evaluate((o) => window.strait.register(o), { ws, uri: 'sip:alice@localhost', password }),
    stepMs, 'register');

  const good = await register('alice-secret');
  if (good.ok !== true) throw new Error(`right password: expected ok, got ${JSON.stringify(good)}`);
  const state = await tab.evaluate(() => window.strait.state());
  if (!state.registered) throw new Error(`right password: state() says not registered: ${JSON.stringify(state)}`);

  const bad = await register('wrong-password');
  if (bad.ok !== false || bad.status !== 403) {
    throw new Error(`wrong password: expected failure with 403, got ${JSON.stringify(bad)}`);
  }
  if (await tab.evaluate(() => window.strait.state().registered)) throw new Error('wrong password: still registered');
  return `e2e register: PASS (alice registered over ${ws}; wrong password -> ${bad.status} ${bad.cause}; ` +
    `${Date.now() - started} ms)`;
}

main().then(
  (line) => finish(true, line),
  (e) => finish(false, `e2e register: FAIL (${e && e.message ? e.message : e})`),
);
