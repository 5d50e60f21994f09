import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  ParleyClient, ParleyError, ParleyApi, networkQuality, normalizeConfig, apiBase, resolveWsUrl,
  CLOSE_CODES, normalizeProviders, availableProviders,
} from '../parley-client.js';
import {
  makeFakeWebSocket, makeFakeGateway, makeFakeFetch, makeClock, sessionView, record, makeFakePlayer, tick,
} from '../testing/fakes.js';

function setup({ routes = {}, options = {} } = {}) {
  const WS = makeFakeWebSocket();
  const clock = makeClock();
  const fetch = makeFakeFetch({
    'POST /api/v1/sessions': () => ({ status: 201, body: sessionView() }),
    'POST /api/v1/sessions/sess-1/end': () => ({ status: 200, body: sessionView({ status: 'ended', duration_seconds: 12.5, total_turns: 3, interruptions_count: 1 }) }),
    'GET /api/v1/sessions/sess-1': () => ({ status: 200, body: sessionView() }),
    ...routes,
  });
  const client = new ParleyClient({
    apiUrl: 'http://gateway.test',
    userId: 'user-123',
    fetch,
    WebSocket: WS,
    timers: clock,
    now: clock.now,
    random: () => 0.5, // backoff factor exactly 1
    ...options,
  });
  return { client, WS, clock, fetch };
}

async function connected(opts) {
  const env = setup(opts);
  const p = env.client.start();
  await tick();
  const ws = env.WS.last();
  assert.ok(ws, 'a WebSocket was opened');
  ws.accept();
  await p;
  return { ...env, ws };
}

describe('session creation', () => {
  test('POST /api/v1/sessions with snake_case config, camelCase accepted', async () => {
    const { client, fetch, WS } = setup({
      options: {
        chatbotId: 'bot-7',
        config: {
          sttProvider: 'whisper', ttsProvider: 'openai', voice: 'nova', language: 'fr',
          responseStyle: 'concise', interruptSensitivity: 'high', systemPrompt: 'Be brief.', bogusKey: 1,
        },
      },
    });
    const p = client.start();
    await tick();
    assert.equal(fetch.calls.length, 1);
    const req = fetch.calls[0];
    assert.equal(req.method, 'POST');
    assert.equal(req.url, 'http://gateway.test/api/v1/sessions');
    assert.equal(req.headers['Content-Type'], 'application/json');
    assert.deepEqual(req.body, {
      user_id: 'user-123',
      chatbot_id: 'bot-7',
      stt_provider: 'whisper',
      llm_provider: 'local',
      tts_provider: 'openai',
      voice: 'nova',
      language: 'fr',
      response_style: 'concise',
      interrupt_sensitivity: 'high',
      system_prompt: 'Be brief.',
    });
    // The socket goes to the ws_url of the create response.
    assert.equal(WS.last().url, 'ws://gateway.test/api/v1/sessions/sess-1/ws');
    WS.last().accept();
    const session = await p;
    assert.equal(session.id, 'sess-1');
    assert.equal(client.sessionId, 'sess-1');
    assert.equal(client.state, 'connected');
  });

  test('defaults: anonymous-free body without null voice/prompt, auto language becomes null', () => {
    assert.deepEqual(normalizeConfig({ language: 'auto', voice: '', systemPrompt: '  ' }), { language: null, voice: null, system_prompt: null });
  });

  test('apiUrl suffixes and relative ws_url are resolved', () => {
    assert.equal(apiBase('http://h:4000/api/voice/'), 'http://h:4000');
    assert.equal(apiBase('https://h/api/v1'), 'https://h');
    assert.equal(resolveWsUrl('/api/v1/sessions/a/ws', 'https://h', 'a'), 'wss://h/api/v1/sessions/a/ws');
    assert.equal(resolveWsUrl(null, 'http://h:8000', 'b c'), 'ws://h:8000/api/v1/sessions/b%20c/ws');
  });

  test('state goes connecting -> connected and ready carries the output rate', async () => {
    const env = setup();
    const seen = record(env.client, ['state', 'ready']);
    const player = makeFakePlayer();
    env.client.attachPlayer(player);
    const p = env.client.start();
    await tick();
    env.WS.last().accept('sess-1', 22050);
    await p;
    assert.deepEqual(seen.filter(([n]) => n === 'state').map(([, s]) => s.state), ['connecting', 'connected']);
    const ready = seen.find(([n]) => n === 'ready')[1];
    assert.equal(ready.outputSampleRate, 22050);
    assert.equal(ready.resumed, false);
    assert.equal(player.rate, 22050);
  });

  test('start() initialises an injected player inside the click', async () => {
    const player = { ...makeFakePlayer(), inits: 0, init() { this.inits++; return Promise.resolve(); } };
    const { client, WS } = setup({ options: { player } });
    const p = client.start();
    assert.equal(player.inits, 1, 'synchronously, before any await');
    await tick();
    WS.last().accept();
    await p;
  });

  test('connect(id) looks the session up and uses its ws_url', async () => {
    const { client, fetch, WS } = setup();
    const p = client.connect('sess-1');
    await tick();
    assert.equal(fetch.calls[0].method, 'GET');
    assert.equal(fetch.calls[0].path, '/api/v1/sessions/sess-1');
    WS.last().accept();
    await p;
    assert.equal(client.state, 'connected');
  });
});

describe('server events', () => {
  const EMOTION = { label: 'happy', scores: { happy: 0.9, neutral: 0.1 }, valence: 0.7, arousal: 0.1 };
  const cases = [
    [{ type: 'speech_started', data: { at_ms: 1200 } }, 'speechStarted', { atMs: 1200 }],
    [{ type: 'speech_stopped', data: { at_ms: 2400 } }, 'speechStopped', { atMs: 2400, durationMs: null }],
    [
      { type: 'transcript', data: { role: 'user', text: 'hello th', is_final: false, partial: true, turn_id: 3 } },
      'transcript',
      { role: 'user', text: 'hello th', isFinal: false, partial: true, confidence: null, language: null, turnId: 3, interrupted: false, emotion: null },
    ],
    [
      { type: 'transcript', data: { role: 'user', text: 'hello there', is_final: true, partial: false, confidence: 0.93, language: 'en', turn_id: 3, emotion: EMOTION } },
      'transcript',
      { role: 'user', text: 'hello there', isFinal: true, partial: false, confidence: 0.93, language: 'en', turnId: 3, interrupted: false, emotion: EMOTION },
    ],
    [{ type: 'response', data: { turn_id: 3, text: 'Hi!', done: false } }, 'response', { turnId: 3, text: 'Hi!', done: false }],
    [{ type: 'audio_start', data: { turn_id: 3, sample_rate: 24000, encoding: 'pcm_s16le' } }, 'audioStart', { turnId: 3, sampleRate: 24000, encoding: 'pcm_s16le' }],
    [{ type: 'audio_end', data: { turn_id: 3 } }, 'audioEnd', { turnId: 3 }],
    [{ type: 'interrupted', data: { turn_id: 3, heard_text: 'Hi' } }, 'interrupted', { turnId: 3, heardText: 'Hi' }],
    [
      { type: 'metrics', data: { turn_id: 3, stt_final_ms: 120, llm_first_token_ms: 300, tts_first_byte_ms: 90, voice_to_voice_ms: 640 } },
      'metrics',
      { turnId: 3, sttFinalMs: 120, llmFirstTokenMs: 300, ttsFirstByteMs: 90, voiceToVoiceMs: 640, interruptMs: null },
    ],
    [
      { type: 'error', data: { code: 'provider_error', message: 'TTS provider failed' } },
      'error',
      { code: 'provider_error', message: 'TTS provider failed', source: 'server', fatal: false, recoverable: true },
    ],
    [{ type: 'pong', data: { ts: 1000, server_ts: 5 } }, 'pong', { rttMs: 0, ts: 1000, serverTs: 5 }],
    [{ type: 'action', data: { turn_id: 4, action: 'switch_to_text' } }, 'action', { turnId: 4, action: 'switch_to_text' }],
  ];

  for (const [msg, event, expected] of cases) {
    test(`${msg.type} -> ${event}`, async () => {
      const { client, ws } = await connected();
      const got = [];
      client.on(event, (p) => got.push(p));
      ws.serverSend(msg);
      assert.equal(got.length, 1, `${event} emitted once`);
      assert.deepEqual(got[0], expected);
    });
  }

  test('S2 flat events surface as legacy only (no duplicate transcript/error)', async () => {
    const { client, ws } = await connected();
    const seen = record(client, ['legacy', 'transcript', 'error', 'response']);
    ws.serverSend({ type: 'transcription_complete', text: 'hello', confidence: 0.9 });
    ws.serverSend({ type: 'voice_processing_error', error: 'boom' });
    assert.deepEqual(seen.map(([n]) => n), ['legacy', 'legacy']);
  });

  test('invalid JSON and untyped messages raise protocol errors', async () => {
    const { client, ws } = await connected();
    const errors = [];
    client.on('error', (e) => errors.push(e.code));
    ws.serverSend('{not json');
    ws.serverSend({ data: {} });
    assert.deepEqual(errors, ['protocol_error', 'protocol_error']);
  });

  test('binary frames go to the player at the turn rate, odd bytes kept aligned', async () => {
    const { client, ws } = await connected();
    const player = makeFakePlayer();
    client.attachPlayer(player);
    const audio = [];
    client.on('audio', (a) => audio.push(a));
    ws.serverSend({ type: 'audio_start', data: { turn_id: 5, sample_rate: 16000 } });
    ws.serverBinary(new ArrayBuffer(960));
    ws.serverBinary(new Uint8Array(11).buffer); // 5 samples + 1 byte carried over
    ws.serverBinary(new Uint8Array(1).buffer); // completes the sample
    assert.deepEqual(player.turns, [{ turnId: 5, rate: 16000 }]);
    assert.deepEqual(player.pushed, [
      { bytes: 960, rate: 16000, turnId: 5 },
      { bytes: 10, rate: 16000, turnId: 5 },
      { bytes: 2, rate: 16000, turnId: 5 },
    ]);
    assert.equal(audio.length, 3);
    assert.equal(client.stats.chunksReceived, 3);
    ws.serverSend({ type: 'audio_end', data: { turn_id: 5 } });
    assert.deepEqual(player.ended, [5]);
  });
});

describe('interrupt and flush', () => {
  test('interrupted flushes the player at once and drops late audio of that turn', async () => {
    const flushed = [];
    const { client, ws } = await connected({ options: { onFlush: (f) => flushed.push(f) } });
    const player = makeFakePlayer();
    client.attachPlayer(player);
    ws.serverSend({ type: 'audio_start', data: { turn_id: 2, sample_rate: 24000 } });
    ws.serverBinary(new ArrayBuffer(480));
    ws.serverSend({ type: 'interrupted', data: { turn_id: 2 } });
    assert.deepEqual(player.flushes, ['interrupted']);
    assert.deepEqual(flushed, [{ reason: 'interrupted', turnId: 2 }]);
    ws.serverBinary(new ArrayBuffer(480)); // in flight when the server cut the turn
    ws.serverSend({ type: 'audio_end', data: { turn_id: 2 } });
    assert.equal(player.pushed.length, 1, 'late audio is not played');
    assert.deepEqual(player.ended, [], 'no end-of-turn for a flushed turn');
    assert.equal(client.stats.chunksDiscarded, 1);
    // The next turn plays again.
    ws.serverSend({ type: 'audio_start', data: { turn_id: 3, sample_rate: 24000 } });
    ws.serverBinary(new ArrayBuffer(480));
    assert.equal(player.pushed.length, 2);
    assert.equal(player.pushed[1].turnId, 3);
  });

  test('audio_pause flushes what is buffered and drops audio until audio_resume', async () => {
    const { client, ws } = await connected();
    const player = makeFakePlayer();
    client.attachPlayer(player);
    const seen = [];
    client.on('audioPause', (p) => seen.push(['pause', p.turnId]));
    client.on('audioResume', (p) => seen.push(['resume', p.turnId]));
    ws.serverSend({ type: 'audio_start', data: { turn_id: 6, sample_rate: 24000 } });
    ws.serverBinary(new ArrayBuffer(480));
    ws.serverSend({ type: 'audio_pause', data: { turn_id: 6 } });
    assert.deepEqual(player.flushes, ['paused']);
    ws.serverBinary(new ArrayBuffer(480)); // sent before the pause: the server sends it again
    assert.equal(player.pushed.length, 1);
    ws.serverSend({ type: 'audio_resume', data: { turn_id: 6 } });
    ws.serverBinary(new ArrayBuffer(480));
    assert.equal(player.pushed.length, 2);
    assert.equal(player.pushed[1].turnId, 6);
    assert.deepEqual(seen, [['pause', 6], ['resume', 6]]);
    ws.serverSend({ type: 'audio_end', data: { turn_id: 6 } });
    assert.deepEqual(player.ended, [6]);
  });

  test('interrupt() sends the message and flushes locally without waiting', async () => {
    const { client, ws } = await connected();
    const player = makeFakePlayer();
    client.attachPlayer(player);
    ws.serverSend({ type: 'audio_start', data: { turn_id: 4, sample_rate: 24000 } });
    assert.equal(client.interrupt(), true);
    assert.deepEqual(ws.json().at(-1), { type: 'interrupt' });
    assert.deepEqual(player.flushes, ['local_interrupt']);
    ws.serverBinary(new ArrayBuffer(100));
    assert.equal(player.pushed.length, 0);
    // The server confirms: no second flush for the same turn, but the event is still emitted.
    const interrupted = [];
    client.on('interrupted', (i) => interrupted.push(i));
    ws.serverSend({ type: 'interrupted', data: { turn_id: 4 } });
    assert.deepEqual(player.flushes, ['local_interrupt']);
    assert.equal(interrupted.length, 1);
  });
});

describe('client messages', () => {
  test('sendText sends {type: text_message, text} trimmed', async () => {
    const { client, ws } = await connected();
    assert.equal(client.sendText('  What is the weather?  '), true);
    assert.deepEqual(ws.json().at(-1), { type: 'text_message', text: 'What is the weather?' });
    assert.throws(() => client.sendText('   '), (e) => e instanceof ParleyError && e.code === 'invalid_text');
    assert.throws(() => client.sendText('x'.repeat(8001)), /longer than 8000/);
  });

  test('pushToTalk sends audio_start / audio_stop and gates frames when pushToTalkOnly', async () => {
    const { client, ws } = await connected({ options: { pushToTalkOnly: true } });
    assert.equal(client.sendAudio(new ArrayBuffer(640)), false);
    client.pushToTalk('start');
    assert.equal(client.sendAudio(new ArrayBuffer(640)), true);
    client.pushToTalk('stop');
    assert.equal(client.sendAudio(new ArrayBuffer(640)), false);
    const types = ws.json().map((m) => m.type).filter((t) => t !== 'ping');
    assert.deepEqual(types, ['audio_start', 'audio_stop']);
    assert.equal(ws.binary().length, 1);
    assert.equal(client.stats.framesSent, 1);
    assert.equal(client.stats.framesDropped, 2);
  });

  test('microphone frames from an injected capture are sent as binary', async () => {
    let onFrame = null;
    const capture = { started: 0, stopped: 0, start(o) { this.started++; onFrame = o.onFrame; }, stop() { this.stopped++; } };
    const { client, ws } = await connected({ options: { createCapture: () => capture } });
    await client.startMicrophone();
    onFrame(new Int16Array(320).buffer);
    onFrame(new Int16Array(320).buffer);
    assert.equal(ws.binary().length, 2);
    assert.equal(ws.binary()[0].byteLength, 640);
    ws.bufferedAmount = 1e6; // congested socket: drop rather than build latency
    onFrame(new Int16Array(320).buffer);
    assert.equal(ws.binary().length, 2);
    client.stopMicrophone();
    assert.equal(capture.stopped, 1);
  });
});

describe('network: ping/pong, RTT, jitter', () => {
  test('pings every 2 s and measures RTT and jitter from the echoed ts', async () => {
    const { client, ws, clock } = await connected();
    const network = [];
    client.on('network', (n) => network.push(n));
    const pings = () => ws.json().filter((m) => m.type === 'ping');
    assert.equal(pings().length, 1, 'a ping on open');
    const first = pings()[0];
    assert.equal(typeof first.ts, 'number');
    clock.advance(40);
    ws.serverSend({ type: 'pong', data: { ts: first.ts, server_ts: 1 } });
    assert.equal(client.network.rttMs, 40);
    assert.equal(client.network.jitterMs, 0);
    clock.advance(1960);
    assert.equal(pings().length, 2, 'next ping after the interval');
    const second = pings()[1];
    clock.advance(100);
    ws.serverSend({ type: 'pong', data: { ts: second.ts, server_ts: 2 } });
    assert.equal(client.network.rttMs, 100);
    assert.equal(client.network.jitterMs, 60);
    assert.equal(network.at(-1).rttMs, 100);
    assert.equal(network.at(-1).quality, 'fair');
  });

  test('networkQuality grades', () => {
    assert.equal(networkQuality({ rttMs: 50, jitterMs: 5, recentReconnects: 0 }), 'good');
    assert.equal(networkQuality({ rttMs: 200, jitterMs: 5 }), 'fair');
    assert.equal(networkQuality({ rttMs: 50, jitterMs: 5, recentReconnects: 1 }), 'fair');
    assert.equal(networkQuality({ rttMs: 500, jitterMs: 5 }), 'poor');
    assert.equal(networkQuality({ rttMs: 50, jitterMs: 150 }), 'poor');
    assert.equal(networkQuality({ rttMs: 50, state: 'reconnecting' }), 'poor');
    assert.equal(networkQuality({ rttMs: null }), 'unknown');
  });
});

describe('reconnect', () => {
  test('a dropped connection reconnects to the same session with backoff', async () => {
    const { client, ws, WS, clock, fetch } = await connected();
    const states = [];
    client.on('state', (s) => states.push(s));
    const readies = [];
    client.on('ready', (r) => readies.push(r));
    ws.serverClose(1006, 'network');
    assert.equal(client.state, 'reconnecting');
    assert.equal(states.at(-1).attempt, 1);
    assert.equal(states.at(-1).delayMs, 500);
    assert.equal(WS.instances.length, 1, 'waits for the backoff');
    clock.advance(499);
    assert.equal(WS.instances.length, 1);
    clock.advance(1);
    assert.equal(WS.instances.length, 2);
    const ws2 = WS.last();
    assert.equal(ws2.url, ws.url, 'same ws_url');
    // First retry fails too: the delay doubles.
    ws2.serverClose(1006);
    assert.equal(states.at(-1).delayMs, 1000);
    clock.advance(1000);
    const ws3 = WS.last();
    assert.equal(WS.instances.length, 3);
    ws3.accept('sess-1');
    assert.equal(client.state, 'connected');
    assert.equal(client.sessionId, 'sess-1');
    assert.equal(readies.at(-1).resumed, true);
    assert.equal(readies.at(-1).sessionId, 'sess-1');
    assert.equal(client.stats.reconnects, 1);
    assert.equal(client.network.reconnects, 1);
    assert.equal(fetch.calls.filter((c) => c.method === 'POST').length, 1, 'no new session created');
  });

  test('text typed while reconnecting is sent after resuming', async () => {
    const { client, ws, WS, clock } = await connected();
    ws.serverClose(1011);
    assert.equal(client.sendText('are you there?'), true);
    clock.advance(500);
    const ws2 = WS.last();
    ws2.accept();
    assert.deepEqual(ws2.json().filter((m) => m.type === 'text_message'), [{ type: 'text_message', text: 'are you there?' }]);
  });

  test('a silent connection is dropped and resumed', async () => {
    const { client, WS, clock } = await connected({ options: { staleAfterMs: 5000 } });
    clock.advance(4000);
    assert.equal(client.state, 'connected', 'still fine within staleAfterMs');
    clock.advance(3500); // pings go out, no pong comes back
    assert.equal(client.state, 'reconnecting');
    assert.equal(WS.instances[0].closedWith.code, 4000);
  });

  test('session ended / not found / replaced closes without reconnecting', async () => {
    const finals = [
      [CLOSE_CODES.SESSION_ENDED, 'session_ended'],
      [CLOSE_CODES.SESSION_NOT_FOUND, 'session_not_found'],
      [CLOSE_CODES.REPLACED, 'session_replaced'],
    ];
    for (const [code, errCode] of finals) {
      const { client, ws, WS, clock } = await connected();
      const errors = [];
      const states = [];
      client.on('error', (e) => errors.push(e));
      client.on('state', (s) => states.push(s));
      ws.serverClose(code, 'gone');
      clock.advance(60000);
      assert.equal(WS.instances.length, 1);
      assert.equal(client.state, 'closed');
      assert.equal(errors[0].code, errCode);
      assert.equal(errors[0].fatal, true);
      assert.equal(errors[0].closeCode, code);
      assert.deepEqual(states.map((s) => [s.state, s.code, s.error]), [['closed', code, errCode]]);
    }
  });

  test('two clients on one session do not evict each other: at most one reconnect in all', async () => {
    const clock = makeClock();
    const WS = makeFakeGateway(clock);
    const fetch = makeFakeFetch({
      'POST /api/v1/sessions': () => ({ status: 201, body: sessionView() }),
      'GET /api/v1/sessions/sess-1': () => ({ status: 200, body: sessionView() }),
    });
    const tab = () => new ParleyClient({
      apiUrl: 'http://gateway.test', fetch, WebSocket: WS, timers: clock, now: clock.now, random: () => 0.5,
    });
    const first = tab();
    const second = tab();
    const attempts = [];
    const errors = [];
    for (const [name, c] of [['first', first], ['second', second]]) {
      c.on('state', (s) => s.state === 'reconnecting' && attempts.push(name));
      c.on('error', (e) => errors.push([name, e]));
    }
    const started = first.start();
    await tick();
    clock.advance(1);
    await started;
    const joined = second.connect('sess-1');
    await tick();
    clock.advance(1);
    await joined;
    for (let i = 0; i < 120; i++) clock.advance(500); // a minute of backoffs and pings
    assert.ok(attempts.length <= 1, `${attempts.length} reconnect attempts (${attempts.slice(0, 6)}…)`);
    assert.equal(second.state, 'connected');
    assert.equal(first.state, 'closed');
    assert.equal(errors.length, 1);
    const [who, err] = errors[0];
    assert.equal(who, 'first');
    assert.equal(err.code, 'session_replaced');
    assert.equal(err.message, 'This call continues in another window.');
    assert.equal(err.closeCode, 4409);
  });

  test('the retry count starts over only after a connection stayed up', async () => {
    const { client, ws, WS, clock } = await connected({
      options: { staleAfterMs: 600000, reconnect: { maxAttempts: 2, baseDelayMs: 100, resetAfterMs: 5000 } },
    });
    const errors = [];
    const states = [];
    client.on('error', (e) => errors.push(e.code));
    client.on('state', (s) => states.push(s));
    // Accepted, then dropped at once: every try counts.
    ws.serverClose(1006);
    clock.advance(100);
    WS.last().accept();
    WS.last().serverClose(1006);
    assert.equal(states.at(-1).attempt, 2);
    clock.advance(200);
    WS.last().accept();
    clock.advance(5000); // this one stays up: the count starts over
    WS.last().serverClose(1006);
    assert.equal(states.at(-1).attempt, 1);
    clock.advance(100);
    WS.last().accept();
    WS.last().serverClose(1006);
    clock.advance(200);
    WS.last().accept();
    WS.last().serverClose(1006);
    assert.equal(client.state, 'closed');
    assert.deepEqual(errors, ['reconnect_failed']);
  });

  test('gives up after maxAttempts with reconnect_failed', async () => {
    const { client, ws, WS, clock } = await connected({ options: { reconnect: { maxAttempts: 2, baseDelayMs: 100 } } });
    const errors = [];
    client.on('error', (e) => errors.push(e.code));
    ws.serverClose(1006);
    clock.advance(100);
    WS.last().serverClose(1006);
    clock.advance(200);
    WS.last().serverClose(1006);
    assert.equal(client.state, 'closed');
    assert.deepEqual(errors, ['reconnect_failed']);
    assert.equal(WS.instances.length, 3);
  });
});

describe('errors from REST', () => {
  test('an error body becomes a ParleyError and an error event', async () => {
    const { client } = setup({
      routes: {
        'POST /api/v1/sessions': () => ({ status: 422, body: { success: false, error: { code: 'validation_error', message: 'voice: too long', details: [{ loc: ['voice'] }] } } }),
      },
    });
    const errors = [];
    client.on('error', (e) => errors.push(e));
    await assert.rejects(client.start(), (e) => e instanceof ParleyError && e.code === 'validation_error' && e.status === 422 && e.details.length === 1);
    assert.equal(errors[0].code, 'validation_error');
    assert.equal(errors[0].message, 'voice: too long');
    assert.equal(client.state, 'closed');
  });

  test('an unreachable server is reported as server_unreachable', async () => {
    const api = new ParleyApi({ apiUrl: 'http://down.test', fetch: async () => { throw new TypeError('Failed to fetch'); } });
    await assert.rejects(api.listProviders(), (e) => e.code === 'server_unreachable' && /down\.test/.test(e.message));
  });

  test('non-JSON errors get an http_<status> code', async () => {
    const fetch = makeFakeFetch({ 'GET /api/v1/providers': () => ({ status: 502, raw: '<html>Bad gateway</html>' }) });
    const api = new ParleyApi({ apiUrl: 'http://g.test', fetch });
    await assert.rejects(api.listProviders(), (e) => e.code === 'http_502' && e.recoverable === true);
  });

  test('providers: only the available ones are offered, reasons kept for the others', async () => {
    const fetch = makeFakeFetch({
      'GET /api/v1/providers': () => ({
        body: {
          stt: [{ name: 'local', available: true, reason: null }, { name: 'deepgram', available: false, reason: 'no API key: set DEEPGRAM_API_KEY' }],
          llm: [{ name: 'local', available: false, reason: 'no llm worker is running' }],
          tts: ['local', { available: true }, { name: 'openai', available: true }],
        },
      }),
    });
    const listing = await new ParleyApi({ apiUrl: 'http://g.test', fetch }).listProviders();
    assert.deepEqual(listing.stt[1], { name: 'deepgram', available: false, reason: 'no API key: set DEEPGRAM_API_KEY' });
    assert.deepEqual(listing.tts.map((p) => p.name), ['local', 'openai'], 'bare names kept, nameless entries dropped');
    assert.deepEqual(availableProviders(listing), { stt: ['local'], llm: [], tts: ['local', 'openai'] });
    assert.deepEqual(normalizeProviders(null), { stt: [], llm: [], tts: [] });
  });

  test('voices and transcript endpoints', async () => {
    const fetch = makeFakeFetch({
      'GET /api/v1/voices': (r) => ({ body: { provider: r.query.get('provider'), voices: [{ id: 'v1', name: 'Amy', language: 'en' }] } }),
      'GET /api/v1/sessions/s/transcript': () => ({ body: { session_id: 's', entries: [] } }),
    });
    const api = new ParleyApi({ apiUrl: 'http://g.test/', fetch });
    const v = await api.listVoices('openai');
    assert.equal(v.provider, 'openai');
    assert.equal((await api.getTranscript('s')).session_id, 's');
  });
});

describe('end', () => {
  test('end() closes the socket, POSTs /end and reports metrics', async () => {
    const { client, ws, WS, clock, fetch } = await connected();
    ws.serverSend({ type: 'metrics', data: { turn_id: 1, voice_to_voice_ms: 600 } });
    ws.serverSend({ type: 'metrics', data: { turn_id: 2, voice_to_voice_ms: 800 } });
    const ended = [];
    client.on('ended', (e) => ended.push(e));
    const result = await client.end();
    assert.deepEqual(ws.closedWith, { code: 1000, reason: 'client ended' });
    const endCall = fetch.calls.find((c) => c.path === '/api/v1/sessions/sess-1/end');
    assert.equal(endCall.method, 'POST');
    assert.equal(result.sessionId, 'sess-1');
    assert.equal(result.session.status, 'ended');
    assert.equal(result.metrics.durationSeconds, 12.5);
    assert.equal(result.metrics.totalTurns, 3);
    assert.equal(result.metrics.avgVoiceToVoiceMs, 700);
    assert.equal(ended.length, 1);
    assert.equal(client.state, 'closed');
    clock.advance(60000);
    assert.equal(WS.instances.length, 1, 'no reconnect after end');
  });
});
