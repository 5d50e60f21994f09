/**
 * Assistant voice playback AudioWorklet: PCM16 chunks at the server's rate are resampled to the
 * context rate and queued; playback starts once a small jitter buffer (~80 ms) is filled (or the
 * turn ended), re-buffers on underrun, and `flush` silences it at once (a ~3 ms fade avoids a click).
 *
 * Self-contained; `PlaybackBuffer` is exported for node tests and the processor is registered
 * only inside an AudioWorkletGlobalScope.
 */

/** Int16 PCM -> float in [-1, 1). */
export function int16ToFloat(pcm) {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  return out;
}

/** Queue of resampled audio with a jitter buffer. */
export class PlaybackBuffer {
  /**
   * @param {{outRate: number, prebufferMs?: number, fadeMs?: number}} opts
   */
  constructor({ outRate, prebufferMs = 80, fadeMs = 3 }) {
    this.outRate = outRate;
    this.prebufferSamples = Math.round((outRate * prebufferMs) / 1000);
    this.fadeSamples = Math.max(1, Math.round((outRate * fadeMs) / 1000));
    /** @type {Float32Array[]} */
    this.queue = [];
    this.readOffset = 0;
    this.buffered = 0;
    /** @type {'idle'|'buffering'|'playing'} */
    this.state = 'idle';
    this.ended = false;
    /** @type {Float32Array|null} */
    this.fade = null;
    this.fadePos = 0;
    // Resampler state (per turn).
    this.srcRate = outRate;
    this.prev = 0;
    this.pos = 1;
    // Counters.
    this.samplesPlayed = 0; // at the output rate
    this.sourceSamplesPlayed = 0; // in the server's samples
    this.chunksReceived = 0;
    this.underruns = 0;
    this.flushes = 0;
    this.turnsDrained = 0;
    this.lastRms = 0;
  }

  /** A new turn at `srcRate` begins (resampler state restarts). */
  startTurn(srcRate) {
    if (srcRate && srcRate !== this.srcRate) {
      this.srcRate = srcRate;
    }
    this.prev = 0;
    this.pos = 1;
    this.ended = false;
  }

  /** No more audio for this turn: play out what is buffered even below the prebuffer. */
  endTurn() {
    this.ended = true;
  }

  /**
   * @param {Int16Array} pcm
   * @param {number} [srcRate]
   */
  push(pcm, srcRate = this.srcRate) {
    if (srcRate !== this.srcRate) {
      this.srcRate = srcRate;
      this.prev = 0;
      this.pos = 1;
    }
    this.chunksReceived++;
    this.ended = false;
    const input = int16ToFloat(pcm);
    let out;
    if (srcRate === this.outRate) {
      out = input;
    } else {
      const step = srcRate / this.outRate;
      out = new Float32Array(Math.ceil(input.length / step) + 2);
      let n = 0;
      for (let i = 0; i < input.length; i++) {
        const x = input[i];
        while (this.pos <= 1) {
          out[n++] = this.prev + (x - this.prev) * this.pos;
          this.pos += step;
        }
        this.pos -= 1;
        this.prev = x;
      }
      out = out.subarray(0, n);
    }
    if (out.length) {
      this.queue.push(out);
      this.buffered += out.length;
      if (this.state === 'idle') this.state = 'buffering';
    }
  }

  /** Drop everything queued now (barge-in). */
  flush() {
    this.flushes++;
    // Keep a very short faded tail of what was playing so the cut does not click.
    if (this.state === 'playing' && this.buffered > 0) {
      const n = Math.min(this.fadeSamples, this.buffered);
      const tail = new Float32Array(n);
      this._take(tail, 0, n);
      for (let i = 0; i < n; i++) tail[i] *= 1 - (i + 1) / n;
      this.fade = tail;
      this.fadePos = 0;
    }
    this.queue = [];
    this.readOffset = 0;
    this.buffered = 0;
    this.state = 'idle';
    this.ended = false;
    this.prev = 0;
    this.pos = 1;
  }

  get bufferedMs() {
    return (this.buffered * 1000) / this.outRate;
  }

  /** Copy `n` queued samples into out[offset..]. */
  _take(out, offset, n) {
    let written = 0;
    while (written < n && this.queue.length) {
      const head = this.queue[0];
      const avail = head.length - this.readOffset;
      const k = Math.min(avail, n - written);
      out.set(head.subarray(this.readOffset, this.readOffset + k), offset + written);
      written += k;
      this.readOffset += k;
      if (this.readOffset >= head.length) {
        this.queue.shift();
        this.readOffset = 0;
      }
    }
    this.buffered -= written;
    return written;
  }

  /**
   * Fill `out` (one render quantum) and return how many real samples were played.
   * Emits state through the return value; the caller reads counters.
   * @param {Float32Array} out
   * @returns {{played: number, drained: boolean}}
   */
  read(out) {
    out.fill(0);
    let offset = 0;
    if (this.fade) {
      const n = Math.min(out.length, this.fade.length - this.fadePos);
      out.set(this.fade.subarray(this.fadePos, this.fadePos + n), 0);
      this.fadePos += n;
      offset = n;
      if (this.fadePos >= this.fade.length) this.fade = null;
    }
    let played = 0;
    let drained = false;
    if (this.state === 'buffering' && (this.buffered >= this.prebufferSamples || (this.ended && this.buffered > 0))) {
      this.state = 'playing';
    }
    if (this.state === 'playing' && offset < out.length) {
      played = this._take(out, offset, out.length - offset);
      if (this.buffered === 0) {
        if (this.ended) {
          this.state = 'idle';
          this.ended = false;
          this.turnsDrained++;
          drained = true;
        } else if (played < out.length - offset) {
          this.underruns++;
          this.state = 'buffering';
        }
      }
    }
    this.samplesPlayed += played;
    this.sourceSamplesPlayed += (played * this.srcRate) / this.outRate;
    let sum = 0;
    for (let i = 0; i < out.length; i++) sum += out[i] * out[i];
    this.lastRms = Math.sqrt(sum / out.length);
    return { played, drained };
  }
}

if (typeof registerProcessor === 'function' && typeof AudioWorkletProcessor === 'function') {
  class ParleyPlaybackProcessor extends AudioWorkletProcessor {
    constructor(options) {
      super();
      const o = (options && options.processorOptions) || {};
      // `sampleRate` is a global of the AudioWorkletGlobalScope.
      this.buf = new PlaybackBuffer({ outRate: sampleRate, prebufferMs: o.prebufferMs || 80 });
      if (o.sourceRate) this.buf.startTurn(o.sourceRate);
      this.blocks = 0;
      this.statsEvery = o.statsEvery || 8;
      this.port.onmessage = (e) => {
        const m = e.data || {};
        switch (m.type) {
          case 'chunk':
            this.buf.push(new Int16Array(m.pcm), m.rate);
            break;
          case 'turn':
            this.buf.startTurn(m.rate);
            break;
          case 'end':
            this.buf.endTurn();
            break;
          case 'flush':
            this.buf.flush();
            this.postStats();
            break;
          default:
            break;
        }
      };
    }

    postStats() {
      const b = this.buf;
      this.port.postMessage({
        type: 'stats',
        samplesPlayed: b.samplesPlayed,
        sourceSamplesPlayed: Math.round(b.sourceSamplesPlayed),
        chunksReceived: b.chunksReceived,
        underruns: b.underruns,
        flushes: b.flushes,
        bufferedMs: b.bufferedMs,
        state: b.state,
        rms: b.lastRms,
      });
    }

    process(_inputs, outputs) {
      const output = outputs[0];
      const ch0 = output[0];
      const { drained } = this.buf.read(ch0);
      for (let c = 1; c < output.length; c++) output[c].set(ch0);
      this.blocks++;
      if (drained) this.port.postMessage({ type: 'drained' });
      if (drained || this.blocks % this.statsEvery === 0) this.postStats();
      return true;
    }
  }
  registerProcessor('parley-playback', ParleyPlaybackProcessor);
}
