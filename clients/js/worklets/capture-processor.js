/**
 * Microphone capture AudioWorklet: mono mix -> low-pass -> resample to 16 kHz -> 20 ms PCM16
 * frames (320 samples, 640 bytes) posted to the main thread with their RMS / peak level.
 *
 * Self-contained (no imports) so it loads in any AudioWorklet; the DSP classes are exported so
 * node tests can exercise them (the processor is only registered inside an AudioWorkletGlobalScope).
 */

/** Windowed-sinc low-pass FIR (Blackman window). */
export function designLowPass(cutoffHz, sampleRate, taps = 31) {
  const fc = cutoffHz / sampleRate;
  const h = new Float32Array(taps);
  const m = taps - 1;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const n = i - m / 2;
    const sinc = n === 0 ? 2 * Math.PI * fc : Math.sin(2 * Math.PI * fc * n) / n;
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / m) + 0.08 * Math.cos((4 * Math.PI * i) / m);
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

/** Streaming resampler from the context rate down (or up) to `outRate`, anti-aliased. */
export class Downsampler {
  /** @param {number} inRate @param {number} [outRate] */
  constructor(inRate, outRate = 16000) {
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate;
    this.passthrough = inRate === outRate;
    this.fir = inRate > outRate ? designLowPass(0.45 * outRate, inRate, 31) : null;
    this.hist = new Float32Array(this.fir ? this.fir.length : 1);
    this.hpos = 0;
    this.prev = 0;
    this.pos = 1;
  }

  /** @param {Float32Array} input @returns {Float32Array} */
  process(input) {
    if (this.passthrough) return input.slice();
    const out = new Float32Array(Math.ceil(input.length / this.step) + 2);
    let n = 0;
    const fir = this.fir;
    const hist = this.hist;
    const len = hist.length;
    for (let i = 0; i < input.length; i++) {
      let y = input[i];
      if (fir) {
        hist[this.hpos] = y;
        y = 0;
        let k = this.hpos;
        for (let j = 0; j < len; j++) {
          y += fir[j] * hist[k];
          k = k === 0 ? len - 1 : k - 1;
        }
        this.hpos = this.hpos + 1 === len ? 0 : this.hpos + 1;
      }
      while (this.pos <= 1) {
        out[n++] = this.prev + (y - this.prev) * this.pos;
        this.pos += this.step;
      }
      this.pos -= 1;
      this.prev = y;
    }
    return out.subarray(0, n);
  }
}

/** Packs float samples into fixed-size PCM16 frames. */
export class FramePacker {
  /** @param {number} [frameSamples] 320 = 20 ms at 16 kHz */
  constructor(frameSamples = 320) {
    this.frameSamples = frameSamples;
    this.buf = new Int16Array(frameSamples);
    this.fill = 0;
    this.sumSq = 0;
    this.peak = 0;
  }

  /**
   * @param {Float32Array} samples
   * @returns {{pcm: Int16Array, rms: number, peak: number}[]}
   */
  push(samples) {
    const frames = [];
    for (let i = 0; i < samples.length; i++) {
      let s = samples[i];
      if (s > 1) s = 1;
      else if (s < -1) s = -1;
      this.buf[this.fill++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
      this.sumSq += s * s;
      const a = s < 0 ? -s : s;
      if (a > this.peak) this.peak = a;
      if (this.fill === this.frameSamples) {
        frames.push({ pcm: this.buf, rms: Math.sqrt(this.sumSq / this.frameSamples), peak: this.peak });
        this.buf = new Int16Array(this.frameSamples);
        this.fill = 0;
        this.sumSq = 0;
        this.peak = 0;
      }
    }
    return frames;
  }
}

/** Average all channels of one input into a mono block. */
export function mixToMono(channels) {
  if (channels.length === 1) return channels[0];
  const out = new Float32Array(channels[0].length);
  for (const ch of channels) for (let i = 0; i < out.length; i++) out[i] += ch[i];
  for (let i = 0; i < out.length; i++) out[i] /= channels.length;
  return out;
}

if (typeof registerProcessor === 'function' && typeof AudioWorkletProcessor === 'function') {
  class ParleyCaptureProcessor extends AudioWorkletProcessor {
    constructor(options) {
      super();
      const o = (options && options.processorOptions) || {};
      // `sampleRate` is a global of the AudioWorkletGlobalScope.
      this.ds = new Downsampler(sampleRate, o.targetRate || 16000);
      this.packer = new FramePacker(o.frameSamples || 320);
      this.muted = false;
      this.active = true;
      this.port.onmessage = (e) => {
        const m = e.data || {};
        if (m.type === 'mute') this.muted = !!m.muted;
        else if (m.type === 'stop') this.active = false;
      };
    }

    process(inputs) {
      if (!this.active) return false;
      const input = inputs[0];
      if (!input || input.length === 0 || !input[0]) return true;
      let mono = mixToMono(input);
      if (this.muted) mono = new Float32Array(mono.length);
      const frames = this.packer.push(this.ds.process(mono));
      for (const f of frames) {
        this.port.postMessage({ type: 'frame', pcm: f.pcm.buffer, rms: f.rms, peak: f.peak }, [f.pcm.buffer]);
      }
      return true;
    }
  }
  registerProcessor('parley-capture', ParleyCaptureProcessor);
}
