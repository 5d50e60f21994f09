import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Downsampler, FramePacker, designLowPass, mixToMono } from '../worklets/capture-processor.js';
import { PlaybackBuffer, int16ToFloat } from '../worklets/playback-processor.js';

function sine(freq, rate, n, amp = 0.5) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

function rms(a, from = 0) {
  let s = 0;
  for (let i = from; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / (a.length - from));
}

/** Run `input` through the capture chain in 128-sample render quanta. */
function capture(input, rate) {
  const ds = new Downsampler(rate, 16000);
  const packer = new FramePacker(320);
  const frames = [];
  const all = [];
  for (let i = 0; i < input.length; i += 128) {
    const out = ds.process(input.subarray(i, i + 128));
    all.push(...out);
    frames.push(...packer.push(out));
  }
  return { frames, samples: Float32Array.from(all) };
}

for (const rate of [48000, 44100, 16000]) {
  test(`capture at ${rate} Hz yields 20 ms PCM16 frames at 16 kHz`, () => {
    const { frames, samples } = capture(sine(440, rate, rate), rate); // 1 second
    assert.ok(Math.abs(samples.length - 16000) <= 2, `~16000 samples, got ${samples.length}`);
    assert.equal(frames.length, 50);
    for (const f of frames) {
      assert.ok(f.pcm instanceof Int16Array);
      assert.equal(f.pcm.byteLength, 640);
    }
    // The 440 Hz tone survives with its level (0.5 amplitude -> RMS ~0.354).
    assert.ok(Math.abs(frames[25].rms - 0.354) < 0.02, `rms ${frames[25].rms}`);
  });
}

test('the anti-alias filter removes content above 8 kHz', () => {
  const rate = 48000;
  const pass = capture(sine(1000, rate, rate), rate).samples;
  const stop = capture(sine(12000, rate, rate), rate).samples;
  assert.ok(rms(pass, 1000) > 0.3, 'a 1 kHz tone passes');
  assert.ok(rms(stop, 1000) < 0.02, `a 12 kHz tone is removed (rms ${rms(stop, 1000)})`);
  const h = designLowPass(7200, 48000, 31);
  assert.ok(Math.abs(h.reduce((a, b) => a + b, 0) - 1) < 1e-6, 'unity DC gain');
});

test('PCM16 conversion clips and is signed', () => {
  const packer = new FramePacker(4);
  const [f] = packer.push(Float32Array.from([1.5, -1.5, 0.5, 0]));
  assert.deepEqual(Array.from(f.pcm), [32767, -32768, 16384, 0]);
  assert.equal(f.peak, 1);
  assert.deepEqual(Array.from(mixToMono([Float32Array.from([1, 0]), Float32Array.from([0, 0])])), [0.5, 0]);
});

test('playback waits for the jitter buffer, then plays; counters advance', () => {
  const b = new PlaybackBuffer({ outRate: 48000, prebufferMs: 80 });
  b.startTurn(24000);
  const out = new Float32Array(128);
  // 40 ms of audio (1920 output samples) is below the 80 ms (3840) prebuffer.
  b.push(new Int16Array(960).fill(8000), 24000);
  assert.equal(b.chunksReceived, 1);
  assert.ok(Math.abs(b.bufferedMs - 40) < 0.5, `buffered ${b.bufferedMs}`);
  b.read(out);
  assert.equal(b.samplesPlayed, 0, 'still buffering');
  assert.ok(out.every((x) => x === 0));
  b.push(new Int16Array(1000).fill(8000), 24000); // now > 80 ms
  b.read(out);
  assert.equal(b.samplesPlayed, 128);
  assert.equal(b.state, 'playing');
  assert.ok(Math.abs(out[64] - 8000 / 32768) < 1e-3);
  assert.equal(Math.round(b.sourceSamplesPlayed), 64, '128 output samples = 64 source samples at 24 kHz');
});

test('flush stops playback at once and drops the queue', () => {
  const b = new PlaybackBuffer({ outRate: 48000, prebufferMs: 20, fadeMs: 1 });
  b.startTurn(48000);
  b.push(new Int16Array(48000).fill(10000), 48000); // 1 s queued
  const out = new Float32Array(128);
  b.read(out);
  assert.equal(b.state, 'playing');
  b.flush();
  assert.equal(b.flushes, 1);
  assert.equal(b.buffered, 0);
  assert.equal(b.state, 'idle');
  b.read(out);
  // Only the short fade tail (48 samples) is audible, decaying to silence.
  assert.ok(out[0] > 0 && out[0] <= 10000 / 32768);
  assert.ok(out.slice(48).every((x) => x === 0), 'silent after the fade');
  const played = b.samplesPlayed;
  b.read(out);
  assert.equal(b.samplesPlayed, played, 'nothing more is played');
  assert.ok(out.every((x) => x === 0));
});

test('a short turn plays out after end, underruns re-buffer, drained is reported', () => {
  const b = new PlaybackBuffer({ outRate: 16000, prebufferMs: 100 });
  b.startTurn(16000);
  b.push(new Int16Array(200).fill(1000), 16000); // 12.5 ms < prebuffer
  const out = new Float32Array(128);
  b.read(out);
  assert.equal(b.samplesPlayed, 0);
  b.endTurn();
  b.read(out);
  assert.equal(b.samplesPlayed, 128);
  const r = b.read(out);
  assert.equal(b.samplesPlayed, 200);
  assert.equal(r.drained, true);
  assert.equal(b.turnsDrained, 1);
  // Underrun mid-turn (no end): back to buffering, counted.
  b.startTurn(16000);
  b.push(new Int16Array(1700).fill(1000), 16000);
  for (let i = 0; i < 14; i++) b.read(out);
  assert.equal(b.underruns, 1);
  assert.equal(b.state, 'buffering');
});

test('resampling 24 kHz -> 48 kHz doubles the length and is continuous across chunks', () => {
  const b = new PlaybackBuffer({ outRate: 48000, prebufferMs: 0 });
  b.startTurn(24000);
  const ramp = new Int16Array(480);
  for (let i = 0; i < 480; i++) ramp[i] = i * 10;
  b.push(ramp.subarray(0, 240), 24000);
  b.push(ramp.subarray(240), 24000);
  assert.ok(Math.abs(b.buffered - 960) <= 2, `buffered ${b.buffered}`);
  const out = new Float32Array(960);
  b.read(out);
  // Monotonic (no discontinuity at the chunk boundary).
  for (let i = 3; i < 900; i++) assert.ok(out[i] >= out[i - 1] - 1e-6, `sample ${i}`);
  assert.deepEqual(Array.from(int16ToFloat(Int16Array.from([-32768, 16384]))), [-1, 0.5]);
});
