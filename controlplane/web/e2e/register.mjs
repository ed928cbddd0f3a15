// End-to-end: the web phone page, served by strait itself, in headless Chromium REGISTERs over WS and over WSS.
//
// Starts `strait --config <temp toml>` (WS 127.0.0.1:18080, WSS 127.0.0.1:18443 with the self-signed certificate
// strait generates, UDP 15060), waits for its "listening sip+ws/wss ADDR" lines, then in Debian's Chromium driven
// by playwright-core:
//   - loads http://<ws listener>/ (index.html, phone.js, jssip.js all from strait) and registers alice over WS;
//   - loads https://<wss listener>/ (certificate errors ignored) and registers bob over WSS;
//   - registers alice with a wrong password over WS and expects registrationFailed with 403.
// Prints one result line and exits 0 on success, 1 otherwise. Every wait is bounded; strait and the browser are
// stopped in every case.
//
// Environment (all optional):
//   STRAIT_BIN       strait binary (default: <repo>/target/debug/strait; the data plane is found beside it)
//   CHROMIUM         browser executable (default: /usr/bin/chromium)
//   E2E_TIMEOUT_MS   overall timeout (default: 60000)
//   E2E_KEEP_TMP     keep the temp directory (config, state) for inspection
// Run it inside a network namespace with only loopback (see scripts/e2e.sh).

import { Run, withTimeout } from './lib.mjs';

const overallMs = Number(process.env.E2E_TIMEOUT_MS || 60000);
const stepMs = 15000;
const run = new Run('register', overallMs);

async function register(tab, o) {
  return withTimeout(tab.evaluate((x) => window.strait.register(x), o), stepMs, `register ${o.uri} over ${o.ws}`);
}

async function main() {
  const started = Date.now();
  const addrs = await run.startStrait({
    sip: { ws: '127.0.0.1:18080', wss: '127.0.0.1:18443', udp: '127.0.0.1:15060', tcp: 'off' },
    media: { port_min: 22000, port_max: 22999 },
  }, ['ws', 'wss']);
  await run.launchChromium();
  const results = [];

  for (const [label, scheme, wsScheme, addr, user] of [
    ['ws', 'http', 'ws', addrs.ws, 'alice'],
    ['wss', 'https', 'wss', addrs.wss, 'bob'],
  ]) {
    const url = `${scheme}://${addr}/`;
    const tab = await run.openPage(label, url);
    if (await tab.evaluate(() => window.strait.state().registered)) throw new Error(`${url}: registered before register()`);
    // The page's default WebSocket is the listener it was loaded from.
    const ws = await tab.evaluate(() => document.getElementById('ws').value);
    if (ws !== `${wsScheme}://${addr}/`) throw new Error(`${url}: page proposes ${ws}, expected ${wsScheme}://${addr}/`);
    const r = await register(tab, { ws, uri: `sip:${user}@localhost`, password: `${user}-secret` });
    if (r.ok !== true) throw new Error(`${user} over ${ws}: expected registered, got ${JSON.stringify(r)}`);
    const state = await tab.evaluate(() => window.strait.state());
    if (!state.registered) throw new Error(`${user} over ${ws}: state() says not registered`);
    results.push(`${user} over ${ws} (page ${url})`);
    if (label === 'ws') {
      const bad = await register(tab, { ws, uri: 'sip:alice@localhost', password: 'wrong-password' });
      if (bad.ok !== false || bad.status !== 403) {
        throw new Error(`wrong password: expected failure with 403, got ${JSON.stringify(bad)}`);
      }
      if (await tab.evaluate(() => window.strait.state().registered)) throw new Error('wrong password: still registered');
      results.push(`wrong password -> ${bad.status} ${bad.cause}`);
    }
  }
  return `e2e register: PASS (${results.join('; ')}; ${Date.now() - started} ms)`;
}

main().then(
  (line) => run.finish(true, [line]),
  (e) => run.finish(false, [`e2e register: FAIL (${e && e.message ? e.message : e})`]),
);
