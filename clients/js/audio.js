/**
 * Browser audio helpers for Parley: microphone capture (getUserMedia + AudioWorklet that
 * downsamples to 16 kHz and emits 20 ms PCM16 frames) and assistant playback (AudioWorklet
 * queue with a ~80 ms jitter buffer, immediate `flush()` on barge-in, mute, level meters), or,
 * for a WebRTC call, of the assistant's audio track (`AudioPlayer.playStream`).
 *
 * Needs a secure context (https or localhost) for getUserMedia and AudioWorklet.
 * All browser globals are looked up lazily and can be injected, so node tests can use fakes.
 *
 * @module parley-audio
 */

/** getUserMedia constraints used for the microphone. */
export const MIC_CONSTRAINTS = Object.freeze({
  audio: Object.freeze({
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
    channelCount: 1,
  }),
  video: false,
});

export const CAPTURE_WORKLET_URL = new URL('./worklets/capture-processor.js', import.meta.url).href;
export const PLAYBACK_WORKLET_URL = new URL('./worklets/playback-processor.js', import.meta.url).href;

/** @type {WeakMap<BaseAudioContext, Map<string, Promise<void>>>} */
const loadedModules = new WeakMap();

/**
 * Load an AudioWorklet module once per context.
 * @param {BaseAudioContext} context
 * @param {string} url
 */
export function loadWorkletModule(context, url) {
  let map = loadedModules.get(context);
  if (!map) {
    map = new Map();
    loadedModules.set(context, map);
  }
  let p = map.get(url);
  if (!p) {
    if (!context.audioWorklet) {
      return Promise.reject(Object.assign(new Error('AudioWorklet is not available (a secure context — https or localhost — is required).'), { code: 'audio_unsupported' }));
    }
    p = context.audioWorklet.addModule(url);
    map.set(url, p);
    p.catch(() => map && map.delete(url));
  }
  return p;
}

/**
 * A shared AudioContext for capture and playback (created lazily, resumed on demand).
 * Call from a user gesture so the browser lets it start.
 * @param {{AudioContext?: any, latencyHint?: AudioContextLatencyCategory|number}} [opts]
 * @returns {AudioContext}
 */
export function createAudioContext(opts = {}) {
  const g = /** @type {any} */ (globalThis);
  const Ctor = opts.AudioContext || g.AudioContext || g.webkitAudioContext;
  if (!Ctor) throw Object.assign(new Error('Web Audio is not supported by this browser.'), { code: 'audio_unsupported' });
  return new Ctor({ latencyHint: opts.latencyHint ?? 'interactive' });
}

/**
 * Map a getUserMedia failure to a code and a message a person understands.
 * @param {any} err
 * @returns {{code: string, message: string}}
 */
export function describeMicError(err) {
  const name = (err && (err.name || err.code)) || '';
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return { code: 'mic_denied', message: 'Microphone access was denied. Allow the microphone for this site in your browser settings, then try again.' };
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return { code: 'mic_not_found', message: 'No microphone was found. Connect one and try again.' };
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return { code: 'mic_busy', message: 'The microphone is in use by another application or could not be started.' };
    case 'mic_insecure':
      return { code: 'mic_insecure', message: 'The microphone needs a secure page: open Parley over https:// or on localhost.' };
    case 'audio_unsupported':
      return { code: 'audio_unsupported', message: (err && err.message) || 'This browser cannot capture or play audio here.' };
    default:
      return { code: 'mic_error', message: `Could not start the microphone${err && err.message ? `: ${err.message}` : '.'}` };
  }
}

/**
 * Ask for the microphone with echo cancellation, noise suppression and AGC.
 * @param {{mediaDevices?: MediaDevices}} [opts]
 * @returns {Promise<MediaStream>}
 */
export async function requestMicrophone(opts = {}) {
  const g = /** @type {any} */ (globalThis);
  const md = opts.mediaDevices || (g.navigator && g.navigator.mediaDevices);
  if (!md || typeof md.getUserMedia !== 'function') {
    const insecure = g.isSecureContext === false;
    throw Object.assign(new Error(insecure ? 'insecure context' : 'getUserMedia unavailable'), {
      name: insecure ? 'mic_insecure' : 'audio_unsupported',
    });
  }
  return md.getUserMedia({ audio: { ...MIC_CONSTRAINTS.audio }, video: false });
}

/**
 * Level of a time-domain snapshot (0..1 RMS).
 * @param {Float32Array} samples
 */
export function rmsLevel(samples) {
  let s = 0;
  for (let i = 0; i < samples.length; i++) s += samples[i] * samples[i];
  return samples.length ? Math.sqrt(s / samples.length) : 0;
}

/** Microphone -> 16 kHz PCM16 20 ms frames. */
export class MicCapture {
  /**
   * @param {{context?: AudioContext, workletUrl?: string, mediaDevices?: MediaDevices, targetRate?: number, frameMs?: number, AudioWorkletNode?: any}} [opts]
   */
  constructor(opts = {}) {
    this.opts = opts;
    /** @type {AudioContext|null} */
    this.context = opts.context || null;
    this.targetRate = opts.targetRate || 16000;
    this.frameSamples = Math.round((this.targetRate * (opts.frameMs || 20)) / 1000);
    /** @type {MediaStream|null} */
    this.stream = null;
    this._ownStream = false;
    /** @type {any} */ this.source = null;
    /** @type {any} */ this.node = null;
    /** @type {AnalyserNode|null} */
    this.analyser = null;
    /** @type {any} */ this._sink = null;
    this.level = 0;
    this.peak = 0;
    this.framesEmitted = 0;
    this.muted = false;
    this.running = false;
    /** @type {((frame: ArrayBuffer) => void)|null} */
    this.onFrame = null;
    /** @type {((level: number) => void)|null} */
    this.onLevel = null;
  }

  /**
   * @param {{stream?: MediaStream, onFrame?: (frame: ArrayBuffer) => void}} [opts]
   */
  async start(opts = {}) {
    if (this.running) return;
    if (opts.onFrame) this.onFrame = opts.onFrame;
    if (!this.context) this.context = createAudioContext();
    const ctx = this.context;
    if (opts.stream) {
      this.stream = opts.stream;
      this._ownStream = false;
    } else if (!this.stream) {
      this.stream = await requestMicrophone({ mediaDevices: this.opts.mediaDevices });
      this._ownStream = true;
    }
    await loadWorkletModule(ctx, this.opts.workletUrl || CAPTURE_WORKLET_URL);
    if (ctx.state === 'suspended') await ctx.resume();
    const g = /** @type {any} */ (globalThis);
    const NodeCtor = this.opts.AudioWorkletNode || g.AudioWorkletNode;
    this.source = ctx.createMediaStreamSource(/** @type {MediaStream} */ (this.stream));
    this.node = new NodeCtor(ctx, 'parley-capture', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: 'explicit',
      processorOptions: { targetRate: this.targetRate, frameSamples: this.frameSamples },
    });
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.analyser.smoothingTimeConstant = 0.6;
    // The worklet must be pulled by the graph: route it to the destination through a muted gain.
    this._sink = ctx.createGain();
    this._sink.gain.value = 0;
    this.source.connect(this.node);
    this.source.connect(this.analyser);
    this.node.connect(this._sink);
    this._sink.connect(ctx.destination);
    this.node.port.onmessage = (/** @type {MessageEvent} */ e) => this._onWorkletMessage(e.data);
    if (this.muted) this.node.port.postMessage({ type: 'mute', muted: true });
    this.running = true;
  }

  /** @param {any} m */
  _onWorkletMessage(m) {
    if (!m || m.type !== 'frame') return;
    this.framesEmitted++;
    this.level = m.rms;
    this.peak = m.peak;
    if (this.onLevel) this.onLevel(m.rms);
    if (this.onFrame) this.onFrame(m.pcm);
  }

  /** Send silence instead of the microphone (the stream keeps running). @param {boolean} muted */
  setMuted(muted) {
    this.muted = !!muted;
    if (this.node) this.node.port.postMessage({ type: 'mute', muted: this.muted });
  }

  stop() {
    if (this.node) {
      try {
        this.node.port.postMessage({ type: 'stop' });
        this.node.port.onmessage = null;
        this.node.disconnect();
      } catch { /* ignore */ }
    }
    for (const n of [this.source, this.analyser, this._sink]) {
      try {
        if (n) n.disconnect();
      } catch { /* ignore */ }
    }
    if (this.stream && this._ownStream) {
      for (const t of this.stream.getTracks()) t.stop();
      this.stream = null;
    }
    this.node = this.source = this._sink = null;
    this.analyser = null;
    this.running = false;
    this.level = 0;
  }
}

/** A WebRTC stream's level is read this often (for meters, `samplesPlayed`, `onDrained`). */
export const STREAM_POLL_MS = 50;
/** Stream audio below this RMS (about -50 dBFS) is the silence between turns. */
export const STREAM_AUDIBLE_RMS = 0.003;
/** After `endTurn`, a stream this long quiet has finished playing the turn. */
export const STREAM_DRAINED_MS = 300;
/** After a flush, a stream is muted this long: what was already on its way is not heard. */
export const STREAM_FLUSH_MUTE_MS = 250;

/** Assistant voice playback through an AudioWorklet queue (or of a WebRTC stream). */
export class AudioPlayer {
  /**
   * @param {{context?: AudioContext, workletUrl?: string, prebufferMs?: number, sampleRate?: number, AudioWorkletNode?: any}} [opts]
   */
  constructor(opts = {}) {
    this.opts = opts;
    /** @type {AudioContext|null} */
    this.context = opts.context || null;
    this.prebufferMs = opts.prebufferMs ?? 80;
    this.sampleRate = opts.sampleRate || 24000;
    /** @type {any} */ this.node = null;
    /** @type {GainNode|null} */
    this.gain = null;
    /** @type {AnalyserNode|null} */
    this.analyser = null;
    this.muted = false;
    this.level = 0;
    this.state = 'idle';
    this.bufferedMs = 0;
    this.counters = { chunksReceived: 0, samplesPlayed: 0, outputSamplesPlayed: 0, flushes: 0, underruns: 0, turns: 0 };
    /** @type {(() => void)|null} */
    this.onDrained = null;
    /** @type {((stats: any) => void)|null} */
    this.onStats = null;
    /** @type {Promise<void>|null} */
    this._initP = null;
    /** @type {any[]} messages posted before the node exists */
    this._pending = [];
    /** @type {any} the WebRTC stream being played (playStream), with its element and meter */
    this._stream = null;
  }

  /** Create the worklet node (idempotent). */
  init() {
    if (!this._initP) this._initP = this._init();
    return this._initP;
  }

  async _init() {
    if (!this.context) this.context = createAudioContext();
    const ctx = this.context;
    await loadWorkletModule(ctx, this.opts.workletUrl || PLAYBACK_WORKLET_URL);
    const g = /** @type {any} */ (globalThis);
    const NodeCtor = this.opts.AudioWorkletNode || g.AudioWorkletNode;
    this.node = new NodeCtor(ctx, 'parley-playback', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { prebufferMs: this.prebufferMs, sourceRate: this.sampleRate },
    });
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.analyser.smoothingTimeConstant = 0.6;
    this.gain = ctx.createGain();
    this.gain.gain.value = this.muted ? 0 : 1;
    this.node.connect(this.analyser);
    this.analyser.connect(this.gain);
    this.gain.connect(ctx.destination);
    this.node.port.onmessage = (/** @type {MessageEvent} */ e) => this._onWorkletMessage(e.data);
    for (const [m, t] of this._pending.splice(0)) this.node.port.postMessage(m, t);
    if (ctx.state === 'suspended') await ctx.resume();
  }

  /** @param {any} m @param {Transferable[]} [transfer] */
  _post(m, transfer = []) {
    if (this.node) this.node.port.postMessage(m, transfer);
    else this._pending.push([m, transfer]);
  }

  /** @param {any} m */
  _onWorkletMessage(m) {
    // While a stream plays, the (idle) worklet's numbers are not the player's.
    if (!m || this._stream) return;
    if (m.type === 'stats') {
      this.counters.samplesPlayed = m.sourceSamplesPlayed;
      this.counters.outputSamplesPlayed = m.samplesPlayed;
      this.counters.underruns = m.underruns;
      this.bufferedMs = m.bufferedMs;
      this.state = m.state;
      this.level = m.rms;
      if (this.onStats) this.onStats(m);
    } else if (m.type === 'drained') {
      this.state = 'idle';
      if (this.onDrained) this.onDrained();
    }
  }

  /** @param {number} rate */
  setSampleRate(rate) {
    if (rate) this.sampleRate = rate;
  }

  /** @param {number|null} _turnId @param {number} [rate] */
  startTurn(_turnId, rate) {
    if (rate) this.sampleRate = rate;
    if (this._stream) this._stream.endedAt = null;
    this.counters.turns++;
    this._post({ type: 'turn', rate: this.sampleRate });
  }

  /**
   * Queue a PCM16 LE mono chunk.
   * @param {ArrayBuffer} pcm
   * @param {number} [rate]
   */
  push(pcm, rate) {
    if (rate) this.sampleRate = rate;
    this.counters.chunksReceived++;
    // Copy so the caller's buffer stays usable; then transfer the copy.
    const copy = pcm.slice(0);
    this._post({ type: 'chunk', pcm: copy, rate: this.sampleRate }, [copy]);
  }

  /** @param {number|null} [_turnId] */
  endTurn(_turnId) {
    if (this._stream) this._stream.endedAt = this._stream.now();
    this._post({ type: 'end' });
  }

  /** Stop at once and drop everything queued (barge-in / interrupted). @param {string} [_reason] */
  flush(_reason) {
    this.counters.flushes++;
    this.bufferedMs = 0;
    this.state = 'idle';
    // Drop queued-but-unsent chunks too.
    this._pending = this._pending.filter(([m]) => m.type !== 'chunk' && m.type !== 'end');
    this._post({ type: 'flush' });
    const s = this._stream;
    if (s) {
      // The server has dropped the rest; what is already on its way is not to be heard.
      s.el.muted = true;
      clearTimeout(s.unmute);
      s.unmute = setTimeout(() => {
        s.el.muted = this.muted;
      }, STREAM_FLUSH_MUTE_MS);
    }
  }

  /** Mute the assistant's voice (playback continues silently, so counters keep running). @param {boolean} muted */
  setMuted(muted) {
    this.muted = !!muted;
    if (this._stream) this._stream.el.muted = this.muted;
    if (this.gain && this.context) {
      const t = this.context.currentTime;
      this.gain.gain.cancelScheduledValues(t);
      this.gain.gain.setTargetAtTime(this.muted ? 0 : 1, t, 0.01);
    }
  }

  /**
   * Play a live MediaStream (a WebRTC call's audio track) instead of pushed chunks: through an
   * audio element, so that the browser's echo canceller knows what is played, and into the
   * analyser (not the speakers) for the meters. Mute, `level`, `counters.samplesPlayed`
   * (audible time, at the source rate), `flush` and `onDrained` (quiet after `endTurn`) keep
   * their meaning. Another call replaces the stream.
   * @param {MediaStream} stream
   * @param {{document?: Document, now?: () => number}} [opts]
   */
  playStream(stream, opts = {}) {
    this.stopStream();
    const doc = opts.document || /** @type {any} */ (globalThis).document;
    const el = doc.createElement('audio');
    el.autoplay = true;
    el.muted = this.muted;
    el.srcObject = stream;
    const played = typeof el.play === 'function' ? el.play() : null;
    if (played && typeof played.catch === 'function') played.catch(() => {});
    const perf = /** @type {any} */ (globalThis).performance;
    const now = opts.now || (() => (perf ? perf.now() : Date.now()));
    /** @type {any} */
    let source = null;
    if (this.context && this.analyser) {
      // The element plays it; the analyser only listens, so nothing is played twice.
      this.analyser.disconnect();
      source = this.context.createMediaStreamSource(stream);
      source.connect(this.analyser);
    }
    const s = {
      el,
      source,
      now,
      /** @type {number|null} when endTurn came (the turn's audio is all on its way) */
      endedAt: null,
      /** @type {number|null} since when the stream is quiet */
      quietSince: now(),
      lastPoll: now(),
      /** @type {any} */ unmute: null,
      /** @type {any} */ timer: null,
      /** @type {Float32Array|null} */ buf: null,
    };
    s.timer = setInterval(() => this._pollStream(s), STREAM_POLL_MS);
    this._stream = s;
  }

  /** Stop playing the stream of `playStream`; pushed chunks play again. */
  stopStream() {
    const s = this._stream;
    if (!s) return;
    this._stream = null;
    clearInterval(s.timer);
    clearTimeout(s.unmute);
    s.el.srcObject = null;
    try {
      if (s.source) s.source.disconnect();
      if (this.analyser && this.gain) {
        this.analyser.disconnect();
        this.analyser.connect(this.gain);
      }
    } catch { /* ignore */ }
  }

  /** @param {any} s */
  _pollStream(s) {
    const t = s.now();
    let rms = 0;
    if (this.analyser) {
      if (!s.buf) s.buf = new Float32Array(this.analyser.fftSize);
      this.analyser.getFloatTimeDomainData(s.buf);
      rms = rmsLevel(s.buf);
    }
    this.level = rms;
    if (rms >= STREAM_AUDIBLE_RMS) {
      this.counters.samplesPlayed += Math.round(((t - s.lastPoll) * this.sampleRate) / 1000);
      this.state = 'playing';
      s.quietSince = null;
    } else if (s.quietSince == null) {
      s.quietSince = t;
    }
    s.lastPoll = t;
    if (s.endedAt != null && s.quietSince != null && t - Math.max(s.quietSince, s.endedAt) >= STREAM_DRAINED_MS) {
      s.endedAt = null;
      this.state = 'idle';
      if (this.onDrained) this.onDrained();
    }
  }

  close() {
    this.stopStream();
    try {
      if (this.node) {
        this.node.port.onmessage = null;
        this.node.disconnect();
      }
      if (this.analyser) this.analyser.disconnect();
      if (this.gain) this.gain.disconnect();
    } catch { /* ignore */ }
    this.node = null;
    this._initP = null;
  }
}
