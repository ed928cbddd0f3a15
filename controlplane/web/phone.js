// Strait's web phone: JsSIP over SIP-over-WebSocket. Served by the strait binary on its WS/WSS listeners.
// The page is also the browser side of Strait's end-to-end tests, which drive it through `window.strait`.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const logEl = $('log');
  const events = [];
  let ua = null;
  let session = null;

  function log(msg) {
    const line = new Date().toISOString().slice(11, 23) + ' ' + msg;
    events.push(line);
    logEl.textContent += line + '\n';
    logEl.scrollTop = logEl.scrollHeight;
  }

  function status(s) {
    $('status').textContent = s;
  }

  function defaultWs() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return scheme + '://' + location.host + '/';
  }
  $('ws').value = defaultWs();

  function buttons() {
    const inCall = !!session && !session.isEnded();
    $('hangup').disabled = !inCall;
    $('answer').disabled = !(inCall && session.direction === 'incoming' && !session.isEstablished());
  }

  // Media options for both directions: audio only, no STUN/TURN (Strait is ICE-lite and reachable directly).
  const mediaOptions = {
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: [], rtcpMuxPolicy: 'require', bundlePolicy: 'max-bundle' },
  };

  function attachSession(s) {
    session = s;
    s.on('progress', (e) => { log('progress ' + (e.response ? e.response.status_code : '')); status('ringing'); });
    s.on('accepted', () => { log('accepted'); status('in call'); buttons(); });
    s.on('confirmed', () => { log('confirmed'); status('in call'); buttons(); });
    s.on('ended', (e) => { log('ended: ' + e.cause); status('call ended: ' + e.cause); buttons(); });
    s.on('failed', (e) => {
      const code = e.message && e.message.status_code ? ' ' + e.message.status_code : '';
      log('failed: ' + e.cause + code); status('call failed: ' + e.cause + code); buttons();
    });
    s.on('peerconnection', (e) => attachAudio(e.peerconnection));
    if (s.connection) attachAudio(s.connection);
    buttons();
  }

  function attachAudio(pc) {
    pc.addEventListener('track', (e) => {
      const remote = $('remote');
      remote.srcObject = e.streams[0] || new MediaStream([e.track]);
      remote.play().catch(() => {});
    });
  }

  function register(opts) {
    opts = opts || {};
    const ws = opts.ws || $('ws').value;
    const uri = opts.uri || $('uri').value;
    const password = opts.password !== undefined ? opts.password : $('password').value;
    if (ua) { ua.stop(); ua = null; }
    return new Promise((resolve) => {
      const socket = new JsSIP.WebSocketInterface(ws);
      ua = new JsSIP.UA({ sockets: [socket], uri: uri, password: password, register: true,
        session_timers: false, register_expires: 600 });
      ua.on('connected', () => log('websocket connected to ' + ws));
      ua.on('disconnected', () => log('websocket disconnected'));
      ua.on('registered', () => { log('registered as ' + uri); status('registered'); resolve({ ok: true }); });
      ua.on('unregistered', () => { log('unregistered'); status('not registered'); });
      ua.on('registrationFailed', (e) => {
        const code = e.response ? e.response.status_code : 0;
        log('registration failed: ' + e.cause + ' ' + code); status('registration failed');
        resolve({ ok: false, cause: e.cause, status: code });
      });
      ua.on('newRTCSession', (e) => {
        if (e.originator === 'remote') {
          log('incoming call from ' + e.request.from.uri.toString());
          status('incoming call');
          attachSession(e.session);
        }
      });
      ua.on('newMessage', (e) => {
        if (e.originator === 'remote') log('message from ' + e.request.from.uri.toString() + ': ' + e.request.body);
      });
      ua.start();
    });
  }

  function call(target) {
    target = target || $('target').value;
    log('calling ' + target);
    const s = ua.call(target, mediaOptions);
    attachSession(s);
    return true;
  }

  function answer() {
    if (session && session.direction === 'incoming') session.answer(mediaOptions);
  }

  function hangup() {
    if (session && !session.isEnded()) session.terminate();
  }

  // Audio statistics of the call in progress, for people and for the tests.
  async function stats() {
    if (!session || !session.connection) return null;
    const report = await session.connection.getStats();
    const out = { inbound: null, outbound: null, codec: null, pair: null };
    const codecs = {};
    report.forEach((r) => { if (r.type === 'codec') codecs[r.id] = r; });
    report.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        out.inbound = { packetsReceived: r.packetsReceived, packetsLost: r.packetsLost,
          bytesReceived: r.bytesReceived, totalAudioEnergy: r.totalAudioEnergy, audioLevel: r.audioLevel,
          jitter: r.jitter, concealedSamples: r.concealedSamples, totalSamplesReceived: r.totalSamplesReceived };
        if (codecs[r.codecId]) out.codec = codecs[r.codecId].mimeType;
      }
      if (r.type === 'outbound-rtp' && r.kind === 'audio') {
        out.outbound = { packetsSent: r.packetsSent, bytesSent: r.bytesSent };
      }
      if (r.type === 'candidate-pair' && r.state === 'succeeded' && r.nominated) {
        out.pair = { local: r.localCandidateId, remote: r.remoteCandidateId };
      }
    });
    return out;
  }

  window.strait = {
    register, call, answer, hangup, stats,
    sendDtmf: (tones) => session && session.sendDTMF(tones),
    sendMessage: (target, body) => ua.sendMessage(target, body),
    state: () => ({ registered: !!ua && ua.isRegistered(), inCall: !!session && session.isEstablished(),
      ended: !!session && session.isEnded(), events: events.slice() }),
  };

  $('register').onclick = () => register();
  $('unregister').onclick = () => ua && ua.unregister();
  $('call').onclick = () => call();
  $('answer').onclick = () => answer();
  $('hangup').onclick = () => hangup();
  $('senddtmf').onclick = () => window.strait.sendDtmf($('dtmf').value);
  log('ready; JsSIP ' + JsSIP.version);
})();
