// Strait's web phone: JsSIP over SIP-over-WebSocket. Served by the strait binary on its WS/WSS listeners.
// The page is also the browser side of Strait's end-to-end tests, which drive it through `window.strait`.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const logEl = $('log');
  const events = [];
  let ua = null;
  let session = null;
  // The current (or last) call as the tests see it: direction, progress codes, and how it ended.
  let call_ = null;

  if (typeof JsSIP === 'undefined') {
    // jssip.js is the placeholder of a strait built without the npm bundle; it already says so on the page.
    const why = window.STRAIT_JSSIP_MISSING || 'JsSIP did not load';
    logEl.textContent = why + '\n';
    document.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    window.strait = { missing: why };
    return;
  }

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

  function attachSession(s, peer) {
    session = s;
    const c = call_ = { direction: s.direction, peer: peer, started: Date.now(), progress: [], accepted: null,
      confirmed: null, ended: null, failed: null };
    s.on('progress', (e) => {
      const code = e.response ? e.response.status_code : 0;
      c.progress.push(code);
      log('progress ' + (code || '')); status('ringing');
    });
    s.on('accepted', () => { c.accepted = Date.now(); log('accepted'); status('in call'); buttons(); });
    s.on('confirmed', () => { c.confirmed = Date.now(); log('confirmed'); status('in call'); buttons(); });
    s.on('ended', (e) => {
      c.ended = { at: Date.now(), cause: e.cause, originator: e.originator };
      log('ended: ' + e.cause + ' (' + e.originator + ')'); status('call ended: ' + e.cause); buttons();
    });
    s.on('failed', (e) => {
      const code = e.message && e.message.status_code ? e.message.status_code : 0;
      c.failed = { at: Date.now(), cause: e.cause, originator: e.originator, status: code };
      log('failed: ' + e.cause + (code ? ' ' + code : '') + ' (' + e.originator + ')');
      status('call failed: ' + e.cause + (code ? ' ' + code : '')); buttons();
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
          attachSession(e.session, e.request.from.uri.toString());
        }
      });
      ua.on('newMessage', (e) => {
        if (e.originator === 'remote') log('message from ' + e.request.from.uri.toString() + ': ' + e.request.body);
      });
      ua.start();
    });
  }

  // Restricts the audio transceivers of `pc` to the codecs named in `names` (e.g. ['opus']: mime subtypes,
  // case-insensitive); telephone-event is always kept. Returns the mime types left, or null if the browser cannot.
  function preferCodecs(pc, names) {
    const want = names.map((n) => 'audio/' + String(n).toLowerCase()).concat(['audio/telephone-event']);
    if (typeof RTCRtpReceiver.getCapabilities !== 'function') return null;
    const caps = RTCRtpReceiver.getCapabilities('audio');
    const codecs = caps ? caps.codecs.filter((c) => want.includes(c.mimeType.toLowerCase())) : [];
    const left = [];
    for (const t of pc.getTransceivers()) {
      if (t.receiver.track.kind !== 'audio' || typeof t.setCodecPreferences !== 'function') continue;
      t.setCodecPreferences(codecs);
      left.push(...codecs.map((c) => c.mimeType + '/' + c.clockRate));
    }
    return left.length ? left : null;
  }

  // Calls `target` (default: the form's). opts.codecs (e.g. ['opus']) limits the audio codecs offered.
  function call(target, opts) {
    target = target || $('target').value;
    opts = opts || {};
    log('calling ' + target + (opts.codecs ? ' offering ' + opts.codecs.join(', ') : ''));
    const s = ua.call(target, mediaOptions);
    if (opts.codecs) {
      // JsSIP adds the microphone track, emits 'connecting' and then creates the offer, all in one go: the
      // transceiver exists and no offer does yet.
      s.on('connecting', () => {
        const left = preferCodecs(s.connection, opts.codecs);
        log(left ? 'codecs offered: ' + left.join(', ') : 'cannot restrict the codecs offered');
      });
    }
    attachSession(s, target);
    return true;
  }

  function answer() {
    if (session && session.direction === 'incoming') session.answer(mediaOptions);
  }

  function hangup() {
    if (session && !session.isEnded()) session.terminate();
  }

  // Audio statistics of the call in progress, for people and for the tests (null when there is no media).
  async function stats() {
    const pc = session && session.connection;
    if (!pc || pc.signalingState === 'closed') return null;
    let report;
    try { report = await pc.getStats(); } catch (e) { return null; }
    const out = { inbound: null, outbound: null, codec: null, sendCodec: null, pair: null,
      ice: pc.iceConnectionState, connection: pc.connectionState };
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
        if (codecs[r.codecId]) out.sendCodec = codecs[r.codecId].mimeType;
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
      ended: !!session && session.isEnded(),
      incoming: !!session && session.direction === 'incoming' && !session.isEstablished() && !session.isEnded(),
      call: call_ && JSON.parse(JSON.stringify(call_)), events: events.slice() }),
  };

  $('register').onclick = () => register();
  $('unregister').onclick = () => ua && ua.unregister();
  $('call').onclick = () => call();
  $('answer').onclick = () => answer();
  $('hangup').onclick = () => hangup();
  $('senddtmf').onclick = () => window.strait.sendDtmf($('dtmf').value);
  log('ready; JsSIP ' + JsSIP.version);
})();
