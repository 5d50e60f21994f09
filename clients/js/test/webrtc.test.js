// The WebRTC transport: when the client uses it, how it signals, what goes on the data channel
// and the audio track, and when it falls back to the WebSocket.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { ParleyClient } from '../parley-client.js';
import { AudioPlayer, STREAM_DRAINED_MS, STREAM_FLUSH_MUTE_MS, STREAM_POLL_MS } from '../audio.js';
import { WebRtcSocket, signallingCloseCode, iceServers, GATHER_TIMEOUT_MS } from '../webrtc.js';
import { makeFakeRtc } from '../testing/fake-webrtc.js';
import { makeFakeWebSocket, makeFakeFetch, makeClock, sessionView, makeFakePlayer, record, tick } from '../testing/fakes.js';

const SETUP = {
  ice_servers: [
    { urls: ['stun:stun.example.org:3478'], username: null, credential: null },
    { urls: ['turn:turn.example.org:3478'], username: '1700000000:alice', credential: 'c2VjcmV0' },
  ],
  ice_gathering: 'complete',
  data_channel: { label: 'parley', id: 0, negotiated: true, ordered: true },
};
const READY = {
  type: 'ready',
  data: { session_id: 'sess-1', config: { output_sample_rate: 24000 }, input_sample_rate: 16000, output_sample_rate: 24000 },
};

function setup({ routes = {}, options = {}, gather } = {}) {
  const WS = makeFakeWebSocket();
  const RTC = makeFakeRtc({ gather });
  const clock = makeClock();
  const fetch = makeFakeFetch({
    'POST /api/v1/sessions': () => ({ status: 201, body: sessionView() }),
    'GET /api/v1/webrtc': () => ({ body: SETUP }),
    'POST /api/v1/sessions/sess-1/webrtc': (req) => ({ body: { type: 'answer', sdp: `answer to ${req.body.sdp.length}` } }),
    'POST /api/v1/sessions/sess-1/end': () => ({ body: sessionView({ status: 'ended' }) }),
    ...routes,
  });
  const client = new ParleyClient({
    apiUrl: 'http://gateway.test', fetch, WebSocket: WS, RTCPeerConnection: RTC, timers: clock, now: clock.now, random: () => 0.5, ...options,
  });
  return { client, WS, RTC, clock, fetch };
}

/** Let the client's promise chain (REST, offer, answer) run. */
async function settle() {
  for (let i = 0; i < 6; i++) await tick();
}

async function overWebRtc(opts) {
  const env = setup(opts);
  const started = env.client.start();
  await settle();
  const pc = env.RTC.last();
  assert.ok(pc, 'a peer connection was made');
  pc.connect();
  pc.channel.serverSend(READY);
  await started;
  return { ...env, pc };
}

function paths(fetch) {
  return fetch.calls.map((c) => `${c.method} ${c.path}`);
}

describe('choosing the transport', () => {
  test('WebRTC when the browser has it and the server offers it: no WebSocket', async () => {
    const { client, fetch, WS, pc } = await overWebRtc();
    assert.equal(client.transport, 'webrtc');
    assert.equal(client.state, 'connected');
    assert.equal(WS.instances.length, 0);
    assert.deepEqual(paths(fetch), ['POST /api/v1/sessions', 'GET /api/v1/webrtc', 'POST /api/v1/sessions/sess-1/webrtc']);
    // ICE servers as the browser takes them: null fields left out.
    assert.deepEqual(pc.config.iceServers, [
      { urls: ['stun:stun.example.org:3478'] },
      { urls: ['turn:turn.example.org:3478'], username: '1700000000:alice', credential: 'c2VjcmV0' },
    ]);
    assert.deepEqual(pc.channel.options, { negotiated: true, id: 0, ordered: true });
    assert.equal(pc.channel.label, 'parley');
    assert.deepEqual(pc.transceivers.map((t) => t.init), [{ direction: 'sendrecv' }]);
    // The offer went once every candidate was in it; the answer was applied.
    const offer = fetch.calls[2].body;
    assert.equal(offer.type, 'offer');
    assert.match(offer.sdp, /a=candidate:/);
    assert.deepEqual(pc.remoteDescription, { type: 'answer', sdp: `answer to ${offer.sdp.length}` });
    assert.equal(client.summary().transport, 'webrtc');
  });

  test('without RTCPeerConnection, or with transport "websocket", the WebSocket at once', async () => {
    for (const options of [{ RTCPeerConnection: undefined }, { transport: 'websocket' }]) {
      const g = /** @type {any} */ (globalThis);
      const saved = g.RTCPeerConnection;
      delete g.RTCPeerConnection;
      try {
        const { client, fetch, WS } = setup({ options });
        const started = client.start();
        await tick();
        WS.last().accept();
        await started;
        assert.equal(client.transport, 'websocket');
        assert.deepEqual(paths(fetch), ['POST /api/v1/sessions']);
      } finally {
        if (saved) g.RTCPeerConnection = saved;
      }
    }
  });

  test('a server that offers no WebRTC (404 webrtc_disabled) gets the WebSocket', async () => {
    const { client, WS, RTC } = setup({
      routes: { 'GET /api/v1/webrtc': () => ({ status: 404, body: { success: false, error: { code: 'webrtc_disabled', message: 'off', details: [] } } }) },
    });
    const seen = record(client, ['transport']);
    const started = client.start();
    await settle();
    WS.last().accept();
    await started;
    assert.equal(client.transport, 'websocket');
    assert.equal(RTC.instances.length, 0);
    assert.deepEqual(seen, [['transport', { transport: 'websocket', reason: 'the server offers no WebRTC (webrtc_disabled)' }]]);
  });

  test('transport "webrtc" fails instead of falling back', async () => {
    const { client, WS } = setup({
      options: { transport: 'webrtc' },
      routes: { 'GET /api/v1/webrtc': () => ({ status: 404, body: { success: false, error: { code: 'webrtc_disabled', message: 'off', details: [] } } }) },
    });
    const errors = record(client, ['error']);
    await assert.rejects(client.start(), { code: 'webrtc_unavailable' });
    assert.equal(client.state, 'closed');
    assert.equal(WS.instances.length, 0);
    assert.equal(errors[0][1].fatal, true);
  });

  test('an unknown transport option is a config error', () => {
    assert.throws(() => new ParleyClient({ apiUrl: 'http://h', fetch: async () => ({}), transport: 'carrier-pigeon' }), { code: 'config_error' });
  });

  test('WebRTC that cannot connect (ICE failed) falls back to the WebSocket for the call', async () => {
    const { client, WS, RTC } = setup();
    const seen = record(client, ['transport']);
    const started = client.start();
    await settle();
    RTC.last().fail();
    assert.equal(RTC.last().closed, true);
    WS.last().accept();
    await started;
    assert.equal(client.transport, 'websocket');
    assert.equal(client.state, 'connected');
    assert.deepEqual(seen.map(([, t]) => t.transport), ['webrtc', 'websocket']);
    assert.match(seen[1][1].reason, /failed/);
  });
});

describe('a WebRTC call', () => {
  test('JSON goes on the data channel, events come from it; audio is not sent as messages', async () => {
    const { client, pc } = await overWebRtc();
    client.sendText('hello');
    client.interrupt();
    const sent = pc.channel.json();
    assert.equal(sent[0].type, 'ping'); // on open, as on a WebSocket
    assert.deepEqual(sent.slice(1), [{ type: 'text_message', text: 'hello' }, { type: 'interrupt' }]);
    assert.equal(client.sendAudio(new ArrayBuffer(640)), false);
    assert.equal(client.stats.framesSent, 0);
    const transcripts = record(client, ['transcript']);
    pc.channel.serverSend({ type: 'transcript', data: { role: 'user', text: 'hi', is_final: true, partial: false, turn_id: 1 } });
    assert.equal(transcripts[0][1].text, 'hi');
  });

  test('the microphone is the audio track, and push-to-talk only sends it while pressed', async () => {
    const mic = { kind: 'audio', id: 'mic' };
    const stream = { getAudioTracks: () => [mic] };
    const capture = { start: async () => {}, stop() {} };
    const { client, pc } = await overWebRtc({ options: { pushToTalkOnly: true, createCapture: () => capture } });
    await client.startMicrophone(/** @type {any} */ (stream));
    const sender = pc.transceivers[0].sender;
    assert.equal(sender.track, null, 'released: nothing is sent');
    client.pushToTalk('start');
    assert.equal(sender.track, mic);
    client.pushToTalk('stop');
    assert.equal(sender.track, null);
    assert.deepEqual(pc.channel.json().slice(1).map((m) => m.type), ['audio_start', 'audio_stop']);
  });

  test("the assistant's track plays through the player once connected", async () => {
    const player = { ...makeFakePlayer(), streams: [], playStream(s) { this.streams.push(s); } };
    const { pc } = await overWebRtc({ options: { player } });
    assert.deepEqual(player.streams, [{ id: 'assistant-audio' }]);
    pc.ontrack({ track: { kind: 'audio' }, streams: [{ id: 'later' }] }); // a track after open
    assert.deepEqual(player.streams, [{ id: 'assistant-audio' }, { id: 'later' }]);
    pc.channel.serverSend({ type: 'interrupted', data: { turn_id: 3, heard_text: 'Hel' } });
    assert.deepEqual(player.flushes, ['interrupted']);
  });

  test("the server's close message is the WebSocket's close: 4409 is final", async () => {
    const { client, pc, RTC, WS, clock } = await overWebRtc();
    const errors = record(client, ['error']);
    pc.channel.serverSend({ type: 'close', code: 4409, reason: 'replaced by a newer connection' });
    assert.equal(client.state, 'closed');
    assert.equal(errors[0][1].code, 'session_replaced');
    clock.advance(60000);
    await settle();
    assert.equal(RTC.instances.length, 1);
    assert.equal(WS.instances.length, 0);
  });

  test('a refused offer stands for the close the socket would get: 401 is final, no fallback', async () => {
    const { client, WS } = setup({
      routes: {
        'POST /api/v1/sessions/sess-1/webrtc': () => ({ status: 401, body: { success: false, error: { code: 'token_expired', message: 'the token has expired', details: [] } } }),
      },
    });
    const errors = record(client, ['error']);
    await assert.rejects(client.start(), { code: 'unauthenticated' });
    assert.equal(errors[0][1].message, 'the token has expired');
    assert.equal(WS.instances.length, 0);
  });

  test('a call that was up reconnects over WebRTC, with a new offer', async () => {
    const { client, pc, RTC, WS, clock, fetch } = await overWebRtc();
    pc.fail();
    assert.equal(client.state, 'reconnecting');
    clock.advance(1000);
    await settle();
    assert.equal(RTC.instances.length, 2);
    assert.equal(WS.instances.length, 0);
    assert.equal(paths(fetch).filter((p) => p.endsWith('/webrtc')).length, 3);
    RTC.last().connect();
    RTC.last().channel.serverSend(READY);
    assert.equal(client.state, 'connected');
  });

  test('the offer carries the token of the Authorization header, not the URL', async () => {
    const { fetch } = await overWebRtc({ options: { token: 'tok-1' } });
    const offer = fetch.calls.find((c) => c.path === '/api/v1/sessions/sess-1/webrtc');
    assert.equal(offer.headers.Authorization, 'Bearer tok-1');
    assert.equal(offer.query.get('token'), null);
  });

  test('slow ICE gathering: the offer goes with what was found after the timeout', async () => {
    const env = setup({ gather: 'never' });
    env.client.start();
    await settle();
    assert.equal(env.fetch.calls.length, 2, 'no offer yet');
    env.clock.advance(GATHER_TIMEOUT_MS);
    await settle();
    assert.equal(paths(env.fetch)[2], 'POST /api/v1/sessions/sess-1/webrtc');
    assert.doesNotMatch(env.fetch.calls[2].body.sdp, /a=candidate/);
  });
});

describe('helpers', () => {
  test('refusals map to close codes; the rest is a lost connection', () => {
    assert.equal(signallingCloseCode({ status: 401 }), 4401);
    assert.equal(signallingCloseCode({ status: 403 }), 4403);
    assert.equal(signallingCloseCode({ status: 404, code: 'session_not_found' }), 4404);
    assert.equal(signallingCloseCode({ status: 409, code: 'session_ended' }), 4410);
    assert.equal(signallingCloseCode({ status: 503, code: 'webrtc_capacity' }), 1006);
    assert.equal(signallingCloseCode({ code: 'server_unreachable' }), 1006);
  });

  test('iceServers drops null credentials', () => {
    assert.deepEqual(iceServers([{ urls: ['stun:s'], username: null, credential: null }]), [{ urls: ['stun:s'] }]);
  });

  test('close() reports onclose once, with its code, like a WebSocket', async () => {
    const RTC = makeFakeRtc();
    const clock = makeClock();
    const conn = new WebRtcSocket({ RTCPeerConnection: RTC, setup: SETUP, signal: async () => ({ type: 'answer', sdp: 'x' }), timers: clock });
    const closes = [];
    conn.onclose = (ev) => closes.push(ev);
    conn.close(4000, 'network blip');
    conn.close(4000, 'again');
    assert.equal(RTC.last().closed, true);
    clock.advance(1);
    assert.deepEqual(closes, [{ code: 4000, reason: 'network blip', wasClean: false }]);
    assert.throws(() => conn.send('{}'), /not open/);
  });
});

/** A fake context whose analyser reports a chosen level. */
function streamPlayerEnv() {
  const level = { rms: 0 };
  const connections = [];
  const node = () => ({ connect(n) { connections.push(n); }, disconnect() {} });
  const analyser = {
    ...node(),
    fftSize: 64,
    getFloatTimeDomainData(buf) { buf.fill(level.rms); },
  };
  const context = { currentTime: 0, createMediaStreamSource: (s) => ({ ...node(), stream: s }) };
  const element = { muted: false, srcObject: null, plays: 0, play() { this.plays++; return Promise.resolve(); } };
  const document = { createElement: (tag) => (assert.equal(tag, 'audio'), element) };
  const player = new AudioPlayer({ context: /** @type {any} */ (context) });
  player.analyser = /** @type {any} */ (analyser);
  const gain = { value: 1, cancelScheduledValues() {}, setTargetAtTime(v) { this.value = v; } };
  player.gain = /** @type {any} */ ({ ...node(), gain });
  return { player, level, element, document };
}

describe('AudioPlayer.playStream', () => {
  test('an audio element plays it; samplesPlayed counts audible time; drained after endTurn', (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
    let now = 0;
    const { player, level, element, document } = streamPlayerEnv();
    let drained = 0;
    player.onDrained = () => drained++;
    player.setMuted(true);
    player.playStream(/** @type {any} */ ({ id: 'remote' }), { document: /** @type {any} */ (document), now: () => now });
    assert.deepEqual(element.srcObject, { id: 'remote' });
    assert.equal(element.plays, 1);
    assert.equal(element.muted, true, 'muted before stays muted');
    player.setMuted(false);
    assert.equal(element.muted, false);
    const step = (ms) => {
      for (let i = 0; i < ms / STREAM_POLL_MS; i++) {
        now += STREAM_POLL_MS;
        t.mock.timers.tick(STREAM_POLL_MS);
      }
    };
    step(500); // silence: nothing counted
    assert.equal(player.counters.samplesPlayed, 0);
    player.startTurn(1, 24000);
    level.rms = 0.1;
    step(1000);
    // The idle worklet keeps reporting its own (zero) numbers: they do not count here.
    player._onWorkletMessage({ type: 'stats', sourceSamplesPlayed: 0, samplesPlayed: 0, state: 'idle', rms: 0 });
    assert.equal(player.counters.samplesPlayed, 24000);
    assert.equal(player.state, 'playing');
    player.endTurn(1);
    step(200); // the turn's end is still on its way
    level.rms = 0;
    step(STREAM_DRAINED_MS - 50);
    assert.equal(drained, 0);
    step(100);
    assert.equal(drained, 1);
    assert.equal(player.state, 'idle');
  });

  test('a flush mutes what is already on its way; stopStream restores pushed playback', (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
    const { player, element, document } = streamPlayerEnv();
    player.playStream(/** @type {any} */ ({}), { document: /** @type {any} */ (document) });
    player.flush('interrupted');
    assert.equal(element.muted, true);
    t.mock.timers.tick(STREAM_FLUSH_MUTE_MS);
    assert.equal(element.muted, false);
    assert.equal(player.counters.flushes, 1);
    player.stopStream();
    assert.equal(element.srcObject, null);
  });
});
