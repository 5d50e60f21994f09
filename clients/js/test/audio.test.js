import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MicCapture, AudioPlayer, MIC_CONSTRAINTS, describeMicError, requestMicrophone } from '../audio.js';
import { ParleyClient } from '../parley-client.js';
import { makeFakeWebSocket, makeFakeFetch, makeClock, sessionView, tick } from '../testing/fakes.js';

function fakeNode() {
  return {
    connections: [],
    connect(n) { this.connections.push(n); return n; },
    disconnect() { this.connections = []; },
  };
}

function fakeAudio() {
  const modules = [];
  const nodes = [];
  const context = {
    state: 'suspended',
    sampleRate: 48000,
    currentTime: 0,
    destination: fakeNode(),
    audioWorklet: { addModule: async (url) => { modules.push(url); } },
    resumed: 0,
    async resume() { this.resumed++; this.state = 'running'; },
    createMediaStreamSource(stream) { return { ...fakeNode(), stream }; },
    createAnalyser() { return { ...fakeNode(), fftSize: 0 }; },
    createGain() {
      const gainParam = { value: 1, target: null, cancelScheduledValues() {}, setTargetAtTime(v) { this.target = v; this.value = v; } };
      return { ...fakeNode(), gain: gainParam };
    },
  };
  class FakeWorkletNode {
    constructor(ctx, name, options) {
      Object.assign(this, fakeNode());
      this.name = name;
      this.options = options;
      this.posted = [];
      this.port = { onmessage: null, postMessage: (m) => this.posted.push(m) };
      nodes.push(this);
    }
    // The processor talks back.
    emit(data) { this.port.onmessage({ data }); }
  }
  return { context, modules, nodes, AudioWorkletNode: FakeWorkletNode };
}

function fakeMediaDevices({ fail } = {}) {
  const calls = [];
  const tracks = [{ stopped: false, stop() { this.stopped = true; } }];
  return {
    calls,
    tracks,
    async getUserMedia(c) {
      calls.push(c);
      if (fail) throw Object.assign(new Error('denied'), { name: fail });
      return { getTracks: () => tracks };
    },
  };
}

test('MicCapture asks for echo cancellation, noise suppression and AGC and emits frames', async () => {
  const a = fakeAudio();
  const md = fakeMediaDevices();
  const cap = new MicCapture({ context: a.context, mediaDevices: md, AudioWorkletNode: a.AudioWorkletNode, workletUrl: '/w/capture.js' });
  const frames = [];
  await cap.start({ onFrame: (f) => frames.push(f) });
  assert.deepEqual(md.calls, [{ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 }, video: false }]);
  assert.deepEqual(MIC_CONSTRAINTS.audio.echoCancellation, true);
  assert.deepEqual(a.modules, ['/w/capture.js']);
  const node = a.nodes[0];
  assert.equal(node.name, 'parley-capture');
  assert.deepEqual(node.options.processorOptions, { targetRate: 16000, frameSamples: 320 });
  assert.equal(a.context.state, 'running');
  node.emit({ type: 'frame', pcm: new ArrayBuffer(640), rms: 0.2, peak: 0.5 });
  assert.equal(frames.length, 1);
  assert.equal(frames[0].byteLength, 640);
  assert.equal(cap.level, 0.2);
  cap.setMuted(true);
  assert.deepEqual(node.posted.at(-1), { type: 'mute', muted: true });
  cap.stop();
  assert.equal(md.tracks[0].stopped, true, 'tracks we opened are stopped');
  assert.equal(cap.running, false);
});

test('a stream passed in is used as is and not stopped by us', async () => {
  const a = fakeAudio();
  const md = fakeMediaDevices();
  const track = { stopped: false, stop() { this.stopped = true; } };
  const cap = new MicCapture({ context: a.context, mediaDevices: md, AudioWorkletNode: a.AudioWorkletNode });
  await cap.start({ stream: { getTracks: () => [track] }, onFrame: () => {} });
  assert.equal(md.calls.length, 0);
  cap.stop();
  assert.equal(track.stopped, false);
});

test('microphone errors are explained to a person', async () => {
  const md = fakeMediaDevices({ fail: 'NotAllowedError' });
  await assert.rejects(requestMicrophone({ mediaDevices: md }), (e) => describeMicError(e).code === 'mic_denied');
  assert.match(describeMicError({ name: 'NotAllowedError' }).message, /denied/);
  assert.equal(describeMicError({ name: 'NotFoundError' }).code, 'mic_not_found');
  assert.equal(describeMicError({ name: 'NotReadableError' }).code, 'mic_busy');
  assert.equal(describeMicError(new Error('weird')).code, 'mic_error');
});

test('AudioPlayer queues chunks, flushes at once, mutes and mirrors worklet counters', async () => {
  const a = fakeAudio();
  const player = new AudioPlayer({ context: a.context, AudioWorkletNode: a.AudioWorkletNode, workletUrl: '/w/play.js' });
  // Chunks pushed before init are delivered once the node exists.
  player.push(new ArrayBuffer(480), 24000);
  await player.init();
  const node = a.nodes[0];
  assert.equal(node.name, 'parley-playback');
  assert.equal(node.posted[0].type, 'chunk');
  assert.equal(node.posted[0].rate, 24000);
  player.push(new ArrayBuffer(480), 24000);
  player.flush('interrupted');
  assert.deepEqual(node.posted.at(-1), { type: 'flush' });
  assert.equal(player.counters.flushes, 1);
  assert.equal(player.counters.chunksReceived, 2);
  node.emit({ type: 'stats', samplesPlayed: 960, sourceSamplesPlayed: 480, underruns: 0, bufferedMs: 0, state: 'idle', rms: 0.1 });
  assert.equal(player.counters.samplesPlayed, 480);
  assert.equal(player.level, 0.1);
  player.setMuted(true);
  assert.equal(player.gain.gain.value, 0);
  player.setMuted(false);
  assert.equal(player.gain.gain.value, 1);
});

test('the client drives a real AudioPlayer: interrupted -> flush message to the worklet', async () => {
  const a = fakeAudio();
  const player = new AudioPlayer({ context: a.context, AudioWorkletNode: a.AudioWorkletNode });
  await player.init();
  const WS = makeFakeWebSocket();
  const clock = makeClock();
  const client = new ParleyClient({
    apiUrl: 'http://g.test', WebSocket: WS, timers: clock, now: clock.now,
    fetch: makeFakeFetch({ 'POST /api/v1/sessions': () => ({ status: 201, body: sessionView() }) }),
    player,
  });
  const p = client.start();
  await tick();
  const ws = WS.last();
  ws.accept();
  await p;
  ws.serverSend({ type: 'audio_start', data: { turn_id: 1, sample_rate: 24000 } });
  ws.serverBinary(new ArrayBuffer(960));
  ws.serverSend({ type: 'interrupted', data: { turn_id: 1 } });
  const types = a.nodes[0].posted.map((m) => m.type);
  assert.deepEqual(types, ['turn', 'chunk', 'flush']);
  assert.equal(player.counters.flushes, 1);
});
