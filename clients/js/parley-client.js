/**
 * Parley JavaScript client: REST session management + the real-time WebSocket protocol.
 *
 * No dependencies and no browser-only APIs at import time, so it runs in browsers and in
 * node (inject `fetch` / `WebSocket`). Microphone capture and playback live in `audio.js`
 * and are loaded lazily by {@link ParleyClient#startMicrophone} / {@link ParleyClient#enablePlayback}.
 *
 * Transports: WebRTC (`webrtc.js`: Opus audio tracks, the same JSON on a data channel) when the
 * browser and the server can, else the WebSocket; the `transport` option forces either.
 *
 * Wire protocol (see libs/common/parley_common/contracts/ws.py):
 *   client -> server text: {"type":"ping","ts"}, {"type":"audio_start"}, {"type":"audio_stop"},
 *                          {"type":"text_message","text"}, {"type":"interrupt"}
 *   client -> server binary: PCM16 LE mono 16 kHz, 20 ms frames (640 bytes)
 *   server -> client text: {"type", "data"} events (ready, pong, speech_started, ...)
 *   server -> client binary: PCM16 LE mono at the turn's sample rate (last audio_start)
 *
 * @module parley-client
 */

import { TRANSPORTS, WebRtcSocket } from './webrtc.js';

/** WebSocket close codes used by the gateway. */
export const CLOSE_CODES = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  INTERNAL_ERROR: 1011,
  PROTOCOL_ERROR: 4400,
  /** No token, or one the gateway does not accept (expired, forged). */
  UNAUTHENTICATED: 4401,
  /** The token's user may not do this. */
  FORBIDDEN: 4403,
  SESSION_NOT_FOUND: 4404,
  /** The same session connected again (another tab or window): this connection is over. */
  REPLACED: 4409,
  SESSION_ENDED: 4410,
});

/**
 * Close codes after which reconnecting cannot help, with the error they become. 4409 above all:
 * reconnecting would evict the newer connection, which would reconnect in turn, for ever; and
 * the same token would be refused again (4401/4403), whose reason is the server's own words.
 * @type {Readonly<Record<number, {code: string, message: string, serverReason?: boolean}>>}
 */
const FINAL_CLOSES = Object.freeze({
  [CLOSE_CODES.UNAUTHENTICATED]: { code: 'unauthenticated', message: 'The server needs a valid sign-in token.', serverReason: true },
  [CLOSE_CODES.FORBIDDEN]: { code: 'forbidden', message: 'This sign-in token may not open this conversation.', serverReason: true },
  [CLOSE_CODES.SESSION_NOT_FOUND]: { code: 'session_not_found', message: 'This conversation no longer exists on the server.' },
  [CLOSE_CODES.REPLACED]: { code: 'session_replaced', message: 'This call continues in another window.' },
  [CLOSE_CODES.SESSION_ENDED]: { code: 'session_ended', message: 'This conversation has ended.' },
});

/** Native server event types ({"type", "data"}). */
export const SERVER_EVENTS = Object.freeze([
  'ready', 'pong', 'speech_started', 'speech_stopped', 'transcript', 'response',
  'audio_start', 'audio_end', 'interrupted', 'audio_pause', 'audio_resume', 'metrics', 'error',
]);

/** S2's flat events, sent next to the native ones; surfaced as `legacy` only (never duplicated). */
export const S2_EVENTS = Object.freeze([
  'transcription_complete', 'response_generated', 'voice_processing_complete',
  'voice_processing_error',
]);

/** Input audio format the server expects. */
export const INPUT_SAMPLE_RATE = 16000;
export const FRAME_MS = 20;
export const FRAME_SAMPLES = (INPUT_SAMPLE_RATE * FRAME_MS) / 1000; // 320
export const FRAME_BYTES = FRAME_SAMPLES * 2; // 640
export const DEFAULT_OUTPUT_SAMPLE_RATE = 24000;
export const MAX_TEXT_LENGTH = 8000;

/** Session configuration defaults (mirror of parley_common.contracts.session.SessionConfig). */
export const DEFAULT_CONFIG = Object.freeze({
  stt_provider: 'local',
  llm_provider: 'local',
  tts_provider: 'local',
  voice: null,
  language: 'en',
  response_style: 'conversational',
  interrupt_sensitivity: 'medium',
  system_prompt: null,
});

export const RESPONSE_STYLES = Object.freeze(['concise', 'conversational', 'detailed']);
export const INTERRUPT_SENSITIVITIES = Object.freeze(['low', 'medium', 'high']);
export const PROVIDERS = Object.freeze({
  stt: Object.freeze(['local', 'whisper', 'openai', 'groq', 'deepgram', 'assemblyai', 'scripted']),
  llm: Object.freeze(['local', 'openai', 'groq', 'anthropic', 'scripted']),
  tts: Object.freeze(['local', 'openai', 'elevenlabs', 'deepgram', 'playht', 'scripted']),
});

const PROVIDER_KINDS = /** @type {const} */ (['stt', 'llm', 'tts']);

/**
 * Normalise GET /api/v1/providers: per kind a list of {name, available, reason}. Bare names
 * (older gateways) count as available; entries without a name are dropped.
 * @param {any} listing
 * @returns {{stt: ProviderStatus[], llm: ProviderStatus[], tts: ProviderStatus[]}}
 */
export function normalizeProviders(listing) {
  /** @type {Record<string, ProviderStatus[]>} */
  const out = {};
  for (const kind of PROVIDER_KINDS) {
    const raw = listing && Array.isArray(listing[kind]) ? listing[kind] : [];
    out[kind] = raw
      .map((/** @type {any} */ x) => (typeof x === 'string'
        ? { name: x, available: true, reason: null }
        : { name: x && x.name, available: !!(x && x.available), reason: (x && x.reason) || null }))
      .filter((/** @type {ProviderStatus} */ x) => typeof x.name === 'string' && x.name !== '');
  }
  return /** @type {any} */ (out);
}

/**
 * The names a session may choose, per kind (the available entries of a providers answer).
 * @param {any} listing
 * @returns {{stt: string[], llm: string[], tts: string[]}}
 */
export function availableProviders(listing) {
  const all = normalizeProviders(listing);
  /** @type {Record<string, string[]>} */
  const out = {};
  for (const kind of PROVIDER_KINDS) out[kind] = all[kind].filter((p) => p.available).map((p) => p.name);
  return /** @type {any} */ (out);
}

const CONFIG_KEYS = [
  'stt_provider', 'llm_provider', 'tts_provider', 'voice', 'language', 'response_style',
  'interrupt_sensitivity', 'system_prompt', 'output_sample_rate', 'detect_emotion',
  'barge_in',
];

/** An error with a machine-readable `code` (server error codes are passed through). */
export class ParleyError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, details?: any[], cause?: unknown, recoverable?: boolean}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'ParleyError';
    this.code = code;
    this.status = extra.status ?? null;
    this.details = extra.details ?? [];
    this.recoverable = extra.recoverable ?? false;
    if (extra.cause !== undefined) this.cause = extra.cause;
  }
}

/** snake_case a camelCase key (`ttsProvider` -> `tts_provider`). */
export function snakeCase(key) {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** camelCase a snake_case key (`turn_id` -> `turnId`). */
export function camelCase(key) {
  return key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/** Shallow copy of an object with camelCased keys. */
export function camelKeys(obj) {
  /** @type {Record<string, any>} */
  const out = {};
  if (!obj || typeof obj !== 'object') return out;
  for (const [k, v] of Object.entries(obj)) out[camelCase(k)] = v;
  return out;
}

/**
 * Normalise a session configuration: accepts camelCase (S1) or snake_case keys, drops unknown
 * keys and `undefined`, turns empty voice / system prompt into null.
 * @param {Record<string, any>} [config]
 * @returns {Record<string, any>}
 */
export function normalizeConfig(config = {}) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const [rawKey, value] of Object.entries(config || {})) {
    const key = snakeCase(rawKey);
    if (!CONFIG_KEYS.includes(key) || value === undefined) continue;
    if ((key === 'voice' || key === 'system_prompt') && typeof value === 'string' && value.trim() === '') {
      out[key] = null;
      continue;
    }
    if (key === 'language' && (value === '' || value === 'auto')) {
      out[key] = null; // null asks the STT provider to detect the language
      continue;
    }
    out[key] = value;
  }
  return out;
}

/**
 * Base URL of the gateway from `apiUrl`: trailing slashes and an `/api/v1` or S1-style
 * `/api/voice` suffix are removed. Empty -> the page's origin (browser only).
 * @param {string | undefined} apiUrl
 * @returns {string}
 */
export function apiBase(apiUrl) {
  let url = (apiUrl || '').trim();
  if (!url) {
    const loc = /** @type {any} */ (globalThis).location;
    if (loc && loc.origin && loc.origin !== 'null') return loc.origin;
    throw new ParleyError('config_error', 'apiUrl is required outside a browser page');
  }
  url = url.replace(/\/+$/, '');
  url = url.replace(/\/api\/(v1|voice)$/, '');
  return url;
}

/**
 * The WebSocket URL of a session: `wsUrl` as the server gave it (absolute or a path), or the
 * standard path. http(s) becomes ws(s); a ws URL is upgraded to wss on an https page.
 * @param {string | null | undefined} wsUrl
 * @param {string} base gateway base URL (http or https)
 * @param {string} sessionId
 * @returns {string}
 */
export function resolveWsUrl(wsUrl, base, sessionId) {
  const raw = wsUrl || `/api/v1/sessions/${encodeURIComponent(sessionId)}/ws`;
  const u = new URL(raw, base.endsWith('/') ? base : `${base}/`);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  const loc = /** @type {any} */ (globalThis).location;
  if (u.protocol === 'ws:' && loc && loc.protocol === 'https:') u.protocol = 'wss:';
  return u.toString();
}

/**
 * Qualitative network grade from the measured numbers.
 * @param {{rttMs?: number|null, jitterMs?: number|null, recentReconnects?: number, state?: string}} n
 * @returns {'good'|'fair'|'poor'|'unknown'}
 */
export function networkQuality(n) {
  if (n.state === 'reconnecting' || n.state === 'closed') return 'poor';
  const rtt = n.rttMs;
  const jitter = n.jitterMs ?? 0;
  const rc = n.recentReconnects ?? 0;
  if (rtt == null) return rc > 0 ? 'fair' : 'unknown';
  if (rtt > 400 || jitter > 100 || rc >= 2) return 'poor';
  if (rtt > 150 || jitter > 30 || rc >= 1) return 'fair';
  return 'good';
}

/** Minimal event emitter (`on` returns an unsubscribe function). */
export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
  }

  /**
   * @param {string} name
   * @param {(payload: any) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(name, handler) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    /** @type {Set<Function>} */ (this._handlers.get(name)).add(handler);
    return () => this.off(name, handler);
  }

  /** @param {string} name @param {(payload: any) => void} handler */
  off(name, handler) {
    this._handlers.get(name)?.delete(handler);
  }

  /** @param {string} name @param {(payload: any) => void} handler */
  once(name, handler) {
    const off = this.on(name, (p) => {
      off();
      handler(p);
    });
    return off;
  }

  /** @param {string} name @param {any} [payload] */
  emit(name, payload) {
    const set = this._handlers.get(name);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(payload);
      } catch (err) {
        // A broken handler must not break the protocol loop.
        if (name !== 'handlerError') this.emit('handlerError', { event: name, error: err });
      }
    }
  }
}

/**
 * Where the bearer token comes from: the token itself, or a function asked before each request
 * and each (re)connection (a string or a Promise of one; null or '' for none).
 * @typedef {string | null | (() => string | null | undefined | Promise<string | null | undefined>)} TokenSource
 */

/**
 * `url` with `token` as its `token` query parameter (URL-encoded, replacing one already there);
 * unchanged without a token. WebSockets carry the token this way: browsers cannot set headers
 * on them.
 * @param {string} url
 * @param {string|null|undefined} token
 * @returns {string}
 */
export function withToken(url, token) {
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set('token', token);
  return u.toString();
}

/**
 * A token as the `token` option gave it: a non-empty string, or null for "none".
 * @param {unknown} value
 * @returns {string|null}
 */
function checkedToken(value) {
  if (value == null || value === '') return null;
  // The value itself is never put in a message: it may be a secret of another shape.
  if (typeof value !== 'string') throw new ParleyError('config_error', 'The token option must give a string');
  return value;
}

/**
 * @param {unknown} cause
 * @returns {ParleyError}
 */
function tokenUnavailable(cause) {
  if (cause instanceof ParleyError && cause.code === 'config_error') return cause;
  return new ParleyError('token_unavailable', 'Could not get a sign-in token for the Parley server', { cause, recoverable: true });
}

/** REST client for the gateway's `/api/v1`. */
export class ParleyApi {
  /**
   * `token`: the bearer token of every request, or a function giving it (a string or a Promise
   * of one), asked before each request and each WebSocket connection so a refreshed token is
   * used. It replaces an `Authorization` in `headers`.
   * @param {{apiUrl?: string, fetch?: typeof fetch, headers?: Record<string,string>, token?: TokenSource}} opts
   */
  constructor(opts = {}) {
    this.base = apiBase(opts.apiUrl);
    const f = opts.fetch || /** @type {any} */ (globalThis).fetch;
    if (typeof f !== 'function') throw new ParleyError('config_error', 'No fetch implementation available');
    /** @type {typeof fetch} */
    this._fetch = (...args) => f(...args);
    this.headers = opts.headers || {};
    /** @type {TokenSource} */
    this._token = opts.token ?? null;
  }

  /**
   * The token to use now: null without one. A plain value is returned as it is (no await), so a
   * connection made with a string token starts in the same tick; a function's Promise is
   * returned as a Promise. Failures are ParleyErrors (`token_unavailable`, `config_error`).
   * @returns {string|null|Promise<string|null>}
   */
  resolveToken() {
    const source = this._token;
    if (typeof source !== 'function') return checkedToken(source);
    let value;
    try {
      value = source();
    } catch (cause) {
      throw tokenUnavailable(cause);
    }
    if (value && typeof (/** @type {any} */ (value)).then === 'function') {
      return Promise.resolve(value).then(checkedToken, (cause) => {
        throw tokenUnavailable(cause);
      });
    }
    return checkedToken(value);
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {any} [body]
   * @param {{keepalive?: boolean}} [options] `keepalive`: the request outlives the page (pagehide)
   */
  async request(method, path, body, options = {}) {
    const url = `${this.base}${path}`;
    const token = await this.resolveToken();
    /** @type {Record<string,string>} */
    const headers = { Accept: 'application/json', ...this.headers };
    if (token) headers.Authorization = `Bearer ${token}`;
    /** @type {RequestInit} */
    const init = { method, headers };
    if (options.keepalive) init.keepalive = true;
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      /** @type {Record<string,string>} */ (init.headers)['Content-Type'] = 'application/json';
    }
    let res;
    try {
      res = await this._fetch(url, init);
    } catch (cause) {
      throw new ParleyError('server_unreachable', `Could not reach the Parley server at ${this.base}`, {
        cause, recoverable: true,
      });
    }
    let payload = null;
    const text = typeof res.text === 'function' ? await res.text() : '';
    if (text) {
      try {
        payload = JSON.parse(text);
      } catch {
        payload = null;
      }
    }
    if (!res.ok) {
      const err = payload && payload.error;
      if (err && typeof err === 'object') {
        throw new ParleyError(err.code || `http_${res.status}`, err.message || `HTTP ${res.status}`, {
          status: res.status, details: err.details || [],
        });
      }
      const detail = payload && typeof payload.detail === 'string' ? payload.detail : null;
      throw new ParleyError(`http_${res.status}`, detail || `The server answered HTTP ${res.status}`, {
        status: res.status, recoverable: res.status >= 500,
      });
    }
    return payload;
  }

  /**
   * POST /api/v1/sessions
   * @param {{userId?: string|null, chatbotId?: string|null, config?: Record<string, any>}} p
   */
  createSession({ userId = null, chatbotId = null, config = {} } = {}) {
    /** @type {Record<string, any>} */
    const body = { ...DEFAULT_CONFIG, ...normalizeConfig(config) };
    // Without a user the server takes the token's (or "anonymous" when it has no auth): naming
    // one that is not the token's is refused.
    if (userId) body.user_id = userId;
    if (chatbotId) body.chatbot_id = chatbotId;
    // null fields the server treats as "unset" are left out to keep the body small.
    if (body.voice == null) delete body.voice;
    if (body.system_prompt == null) delete body.system_prompt;
    return this.request('POST', '/api/v1/sessions', body);
  }

  /** @param {string} id */
  getSession(id) {
    return this.request('GET', `/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  /**
   * @param {string} id
   * @param {{keepalive?: boolean}} [options] `keepalive` to end it while the page goes away
   */
  endSession(id, options = {}) {
    return this.request('POST', `/api/v1/sessions/${encodeURIComponent(id)}/end`, {}, options);
  }

  /** @param {string} id */
  getTranscript(id) {
    return this.request('GET', `/api/v1/sessions/${encodeURIComponent(id)}/transcript`);
  }

  /** @param {string} [provider] */
  listVoices(provider = 'local') {
    return this.request('GET', `/api/v1/voices?provider=${encodeURIComponent(provider)}`);
  }

  /** GET /api/v1/providers, normalised: {stt, llm, tts} lists of {name, available, reason}. */
  async listProviders() {
    return normalizeProviders(await this.request('GET', '/api/v1/providers'));
  }

  /** GET /api/v1/webrtc: the ICE servers and data channel of WebRTC calls (404 when it is off). */
  webrtcConfig() {
    return this.request('GET', '/api/v1/webrtc');
  }

  /**
   * POST /api/v1/sessions/{id}/webrtc: the offer (every ICE candidate in it) in, the answer out.
   * @param {string} id @param {{type: 'offer', sdp: string}} offer
   */
  webrtcOffer(id, offer) {
    return this.request('POST', `/api/v1/sessions/${encodeURIComponent(id)}/webrtc`, offer);
  }
}

function defaultTimers() {
  const g = /** @type {any} */ (globalThis);
  return {
    setTimeout: (/** @type {Function} */ fn, /** @type {number} */ ms) => g.setTimeout(fn, ms),
    clearTimeout: (/** @type {any} */ id) => g.clearTimeout(id),
    setInterval: (/** @type {Function} */ fn, /** @type {number} */ ms) => g.setInterval(fn, ms),
    clearInterval: (/** @type {any} */ id) => g.clearInterval(id),
  };
}

function defaultNow() {
  const p = /** @type {any} */ (globalThis).performance;
  return p && typeof p.now === 'function' ? () => p.now() : () => Date.now();
}

const WS_OPEN = 1;

/**
 * @typedef {object} ParleyClientOptions
 * @property {string} [apiUrl] gateway base URL (default: the page's origin); `/api/v1` or `/api/voice` suffixes are accepted
 * @property {string} [userId]
 * @property {string|null} [chatbotId]
 * @property {Record<string, any>} [config] session config, camelCase or snake_case
 * @property {typeof fetch} [fetch]
 * @property {any} [WebSocket] WebSocket constructor
 * @property {'auto'|'webrtc'|'websocket'} [transport] `auto` (default): WebRTC when the browser has it and the server offers it, else the WebSocket
 * @property {any} [RTCPeerConnection] RTCPeerConnection constructor (default: the browser's)
 * @property {Record<string,string>} [headers] extra REST headers
 * @property {TokenSource} [token] bearer token (or a function giving it) for REST and the WebSocket
 * @property {ParleyApi} [api] its own token is used: give `token` to it, not to both
 * @property {any} [player] playback sink: {push(pcm, sampleRate, turnId), flush(reason), startTurn?, endTurn?, setSampleRate?}
 * @property {() => any} [createCapture] microphone source factory: {start({stream, onFrame}), stop()}
 * @property {AudioContext} [audioContext] shared AudioContext for the lazily created audio helpers
 * @property {(info: {reason: string, turnId: number|null}) => void} [onFlush] called whenever playback must be flushed
 * @property {number} [pingIntervalMs]
 * @property {number} [staleAfterMs]
 * @property {number} [connectTimeoutMs]
 * @property {{maxAttempts?: number, baseDelayMs?: number, maxDelayMs?: number, resetAfterMs?: number}} [reconnect]
 * @property {boolean} [pushToTalkOnly] send microphone frames only between pushToTalk('start') and ('stop')
 * @property {number} [maxBufferedBytes]
 * @property {{setTimeout?: Function, clearTimeout?: Function, setInterval?: Function, clearInterval?: Function}} [timers]
 * @property {() => number} [now] monotonic clock in ms
 * @property {() => number} [random]
 */

/**
 * @typedef {object} ProviderStatus
 * @property {string} name
 * @property {boolean} available whether sessions may choose it on this deployment
 * @property {string|null} reason why not, e.g. "no API key: set OPENAI_API_KEY"
 */

/**
 * @typedef {object} LogEntry
 * @property {string} id
 * @property {'user'|'assistant'|'system'} role
 * @property {number|null} turnId
 * @property {string} text
 * @property {boolean} final
 * @property {number|null} confidence
 * @property {boolean} interrupted
 * @property {boolean} typed
 * @property {string|null} heardText
 * @property {Emotion|null} emotion the tone of a user's spoken turn (`detect_emotion` sessions)
 */

/**
 * @typedef {object} Emotion
 * @property {'neutral'|'happy'|'excited'|'frustrated'|'angry'|'sad'} label
 * @property {Record<string, number>} scores one per label, summing to 1
 * @property {number} valence -1 negative .. 1 positive (the words)
 * @property {number} arousal -1 subdued .. 1 animated (the voice, next to the user's usual)
 */

/**
 * A real-time voice session with the Parley gateway.
 *
 * Events (`client.on(name, handler)`):
 * - `state` {state, previous, attempt?, delayMs?, code?, reason?, error?} (`error`: why a `closed`
 *   is final, e.g. `session_replaced` when the session connected from another window)
 * - `ready` {sessionId, config, inputSampleRate, outputSampleRate, resumed}
 * - `session` the REST session view after creation / lookup
 * - `transport` {transport: 'webrtc'|'websocket', reason?} the call's transport, once chosen (and
 *   again if WebRTC could not connect and the WebSocket is used instead)
 * - `transcript` {role, text, isFinal, partial, confidence, language, turnId, interrupted}
 * - `response` {turnId, text, done}
 * - `speechStarted` / `speechStopped` {atMs}
 * - `audioStart` {turnId, sampleRate, encoding}
 * - `audio` {pcm: ArrayBuffer, sampleRate, turnId}
 * - `audioEnd` {turnId}
 * - `interrupted` {turnId, heardText}
 * - `audioPause` / `audioResume` {turnId}: speech over the assistant paused its audio (what was
 *   buffered is flushed) while the server judged it; resumed after a backchannel or noise
 * - `flush` {reason, turnId}
 * - `metrics` {turnId, sttFinalMs, llmFirstTokenMs, ttsFirstByteMs, voiceToVoiceMs, interruptMs}
 * - `network` {rttMs, jitterMs, reconnects, quality}
 * - `pong` {rttMs, ts, serverTs}
 * - `error` {code, message, source: 'server'|'client'|'network'|'http', fatal, recoverable}
 * - `ended` {sessionId, session, metrics}
 * - `legacy` S2 flat events as received
 * - `message` every parsed JSON message as received
 */
export class ParleyClient extends Emitter {
  /**
   * @param {ParleyClientOptions} [options]
   */
  constructor(options = {}) {
    super();
    this.options = options;
    /** @type {string|null} null: the server decides (the token's user, or "anonymous") */
    this.userId = options.userId || null;
    this.chatbotId = options.chatbotId || null;
    this.config = { ...DEFAULT_CONFIG, ...normalizeConfig(options.config || {}) };
    if (options.api && options.token != null) {
      throw new ParleyError('config_error', 'Give the token to the ParleyApi passed as api, not to the client');
    }
    this.api = options.api || new ParleyApi({
      apiUrl: options.apiUrl, fetch: options.fetch, headers: options.headers, token: options.token,
    });
    this._WebSocket = options.WebSocket || /** @type {any} */ (globalThis).WebSocket;
    this.transportOption = options.transport || 'auto';
    if (!TRANSPORTS.includes(this.transportOption)) {
      throw new ParleyError('config_error', `transport must be one of: ${TRANSPORTS.join(', ')}`);
    }
    this._RTCPeerConnection = options.RTCPeerConnection || /** @type {any} */ (globalThis).RTCPeerConnection;
    /** @type {'webrtc'|'websocket'|null} the current call's transport (null until chosen) */
    this.transport = null;
    /** @type {any} GET /api/v1/webrtc's answer for this call */
    this._webrtcSetup = null;
    /** @type {MediaStreamTrack|null} the microphone, which WebRTC sends on its audio track */
    this._micTrack = null;
    /** @type {any} plays WebRTC audio when the player cannot (see _playStream) */
    this._audioElement = null;
    this._timers = { ...defaultTimers(), ...(options.timers || {}) };
    this._now = options.now || defaultNow();
    this._random = options.random || Math.random;
    this.pingIntervalMs = options.pingIntervalMs ?? 2000;
    this.staleAfterMs = options.staleAfterMs ?? Math.max(3 * this.pingIntervalMs + 1000, 5000);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10000;
    const rc = options.reconnect || {};
    this.reconnectPolicy = {
      maxAttempts: rc.maxAttempts ?? 10,
      baseDelayMs: rc.baseDelayMs ?? 500,
      maxDelayMs: rc.maxDelayMs ?? 8000,
      // The retry count starts over only once a connection has stayed up this long: a server
      // that accepts and then drops at once must not be retried for ever.
      resetAfterMs: rc.resetAfterMs ?? 10000,
    };
    this.pushToTalkOnly = !!options.pushToTalkOnly;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024;

    /** @type {'idle'|'connecting'|'connected'|'reconnecting'|'closed'} */
    this.state = 'idle';
    /** @type {string|null} */
    this.sessionId = null;
    /** @type {any} */
    this.session = null;
    /** @type {string|null} */
    this.wsUrl = null;
    /** @type {any} */
    this.ready = null;
    this.outputSampleRate = DEFAULT_OUTPUT_SAMPLE_RATE;
    /** @type {any} */
    this.ws = null;
    /** @type {any} */
    this.player = options.player || null;
    /** @type {any} */
    this.capture = null;

    this.stats = {
      framesSent: 0,
      framesDropped: 0,
      bytesSent: 0,
      chunksReceived: 0,
      chunksDiscarded: 0,
      bytesReceived: 0,
      pingsSent: 0,
      pongsReceived: 0,
      reconnects: 0,
      flushes: 0,
      messagesReceived: 0,
    };
    this.network = { rttMs: /** @type {number|null} */ (null), jitterMs: /** @type {number|null} */ (null), reconnects: 0, quality: /** @type {string} */ ('unknown') };
    /** @type {number[]} */
    this._rtts = [];
    /** @type {number[]} */
    this._reconnectTimes = [];
    /** @type {any[]} */
    this.turnMetrics = [];
    this.turns = { interrupted: 0 };

    /** @type {number|null} turn whose audio is arriving (last audio_start) */
    this.audioTurnId = null;
    this.audioSampleRate = DEFAULT_OUTPUT_SAMPLE_RATE;
    /** @type {number|null} turn whose late audio is dropped after an interrupt */
    this._dropAudioTurn = null;
    this._dropAudio = false;
    /** the server paused playout (speech over the assistant): audio until audio_resume is stale */
    this._paused = false;
    /** @type {Uint8Array|null} */
    this._oddByte = null;

    this._closing = false;
    this._attempt = 0;
    /** Counts connection attempts: a token that arrives after its attempt was given up is dropped. */
    this._openSeq = 0;
    this._everReady = false;
    /** @type {any} */ this._pingTimer = null;
    /** @type {any} */ this._staleTimer = null;
    /** @type {any} */ this._reconnectTimer = null;
    /** @type {any} */ this._stableTimer = null;
    /** @type {any} */ this._connectTimer = null;
    this._lastMessageAt = 0;
    /** @type {Array<Record<string, any>>} */
    this._outbox = [];
    this._pttActive = false;
    /** @type {{resolve: Function, reject: Function, promise: Promise<any>}|null} */
    this._readyWaiter = null;
    this.startedAt = /** @type {number|null} */ (null);
  }

  // -- lifecycle ------------------------------------------------------------------------------

  /**
   * Create a session (POST /api/v1/sessions) and connect to it.
   * Resolves with the session view once the server said `ready`.
   */
  async start() {
    if (this.state !== 'idle' && this.state !== 'closed') {
      throw new ParleyError('invalid_state', `Cannot start while ${this.state}`);
    }
    this._initPlayer(); // still inside the user's click: the AudioContext may start
    this._setState('connecting');
    let session;
    try {
      session = await this.api.createSession({ userId: this.userId, chatbotId: this.chatbotId, config: this.config });
    } catch (err) {
      this._emitError(err, 'http', true);
      this._setState('closed');
      throw err;
    }
    this._adoptSession(session);
    return this._openAndWait();
  }

  /**
   * Connect to an existing session (GET /api/v1/sessions/{id} for its ws_url), e.g. to resume
   * after a page reload. Accepts a session view object as well.
   * @param {string | {id: string, ws_url?: string}} session
   */
  async connect(session) {
    if (this.ws) throw new ParleyError('invalid_state', `Already ${this.state}`);
    this._initPlayer();
    this._clearTimer('_reconnectTimer');
    this._setState('connecting');
    let view = typeof session === 'string' ? null : session;
    if (!view) {
      try {
        view = await this.api.getSession(/** @type {string} */ (session));
      } catch (err) {
        this._emitError(err, 'http', true);
        this._setState('closed');
        throw err;
      }
    }
    if (view && view.status === 'ended') {
      const err = new ParleyError('session_ended', 'This conversation has already ended.');
      this._emitError(err, 'client', true);
      this._setState('closed');
      throw err;
    }
    this._adoptSession(view);
    return this._openAndWait();
  }

  /**
   * Close the connection without ending the session (it stays resumable with `connect(id)`).
   */
  disconnect() {
    this._closing = true;
    this._teardownSocket(CLOSE_CODES.NORMAL, 'client disconnect');
    this.stopMicrophone();
    this._setState('closed');
  }

  /**
   * End the conversation: stop the microphone and playback, close the socket and
   * POST /api/v1/sessions/{id}/end. Resolves with {sessionId, session, metrics}.
   */
  async end() {
    const sessionId = this.sessionId;
    this._closing = true;
    this.stopMicrophone();
    this._flushPlayback('end');
    this._teardownSocket(CLOSE_CODES.NORMAL, 'client ended');
    let session = null;
    if (sessionId) {
      try {
        session = await this.api.endSession(sessionId);
        this.session = session;
      } catch (err) {
        this._emitError(err, 'http', false);
      }
    }
    this._setState('closed');
    this._rejectReady(new ParleyError('ended', 'The session was ended'));
    const result = { sessionId, session, metrics: this.summary() };
    this.emit('ended', result);
    return result;
  }

  /** GET the stored transcript of this (or another) session. */
  getTranscript(id = this.sessionId) {
    if (!id) throw new ParleyError('invalid_state', 'No session');
    return this.api.getTranscript(id);
  }

  /** Client-side summary of the call (also passed to `ended`). */
  summary() {
    const now = this._now();
    const v2v = this.turnMetrics.map((m) => m.voiceToVoiceMs).filter((x) => typeof x === 'number');
    const s = this.session || {};
    return {
      durationSeconds: s.duration_seconds ?? (this.startedAt != null ? Math.round((now - this.startedAt) / 100) / 10 : 0),
      totalTurns: s.total_turns ?? this.turnMetrics.length,
      interruptions: s.interruptions_count ?? this.turns.interrupted,
      avgVoiceToVoiceMs: v2v.length ? Math.round(v2v.reduce((a, b) => a + b, 0) / v2v.length) : null,
      rttMs: this.network.rttMs,
      jitterMs: this.network.jitterMs,
      reconnects: this.stats.reconnects,
      framesSent: this.stats.framesSent,
      chunksReceived: this.stats.chunksReceived,
      transport: this.transport,
    };
  }

  // -- audio ----------------------------------------------------------------------------------

  /**
   * Start streaming the microphone (browser). `stream` may be a MediaStream you already hold;
   * otherwise getUserMedia is asked with echo cancellation, noise suppression and AGC.
   * Inject `options.createCapture` to use another source (tests, node).
   * @param {MediaStream} [stream]
   */
  async startMicrophone(stream) {
    if (!this.capture) {
      if (this.options.createCapture) {
        this.capture = this.options.createCapture();
      } else {
        const audio = await import('./audio.js');
        const context = this.options.audioContext || (this.player && this.player.context) || undefined;
        this.capture = new audio.MicCapture({ context });
      }
    }
    await this.capture.start({
      stream,
      onFrame: (/** @type {ArrayBuffer} */ frame) => this.sendAudio(frame),
    });
    const source = stream || this.capture.stream;
    this._micTrack = (source && typeof source.getAudioTracks === 'function' && source.getAudioTracks()[0]) || null;
    this._sendMicrophone();
    return this.capture;
  }

  /** Stop streaming the microphone (the session stays open). */
  stopMicrophone() {
    this._micTrack = null;
    this._sendMicrophone();
    if (this.capture) {
      try {
        this.capture.stop();
      } catch {
        /* already stopped */
      }
    }
  }

  /**
   * Create the browser audio player (AudioWorklet) unless one was injected; returns it.
   * Call from a user gesture (click) so the AudioContext may start.
   */
  async enablePlayback() {
    if (this.player) return this.player;
    const audio = await import('./audio.js');
    const player = new audio.AudioPlayer({ context: this.options.audioContext });
    await player.init();
    this.attachPlayer(player);
    return player;
  }

  /**
   * Route received audio to `player` ({push(pcm, rate, turnId), endTurn?(turnId), flush(reason)}).
   * @param {any} player
   */
  attachPlayer(player) {
    this.player = player;
    if (player && typeof player.setSampleRate === 'function') player.setSampleRate(this.outputSampleRate);
    if (this.state !== 'idle') this._initPlayer();
  }

  /** Initialise the player if it has an `init()` (AudioPlayer); errors become `error` events. */
  _initPlayer() {
    const p = this.player;
    if (!p || typeof p.init !== 'function') return;
    try {
      const r = p.init();
      if (r && typeof r.catch === 'function') {
        r.catch((/** @type {any} */ err) => this._emitError(new ParleyError('audio_unsupported', `Audio playback is unavailable: ${err && err.message ? err.message : err}`), 'client', false));
      }
    } catch (err) {
      this._emitError(new ParleyError('audio_unsupported', `Audio playback is unavailable: ${/** @type {any} */ (err).message || err}`), 'client', false);
    }
  }

  /**
   * Send one binary PCM16 frame (16 kHz mono). Returns false when it was dropped
   * (not connected, push-to-talk released, or the socket is congested).
   * @param {ArrayBuffer | ArrayBufferView} pcm
   */
  sendAudio(pcm) {
    if (this.transport === 'webrtc') return false; // the microphone goes on the audio track
    const ws = this.ws;
    if (!ws || this.state !== 'connected' || ws.readyState !== WS_OPEN || (this.pushToTalkOnly && !this._pttActive)) {
      this.stats.framesDropped++;
      return false;
    }
    if (typeof ws.bufferedAmount === 'number' && ws.bufferedAmount > this.maxBufferedBytes) {
      this.stats.framesDropped++;
      return false;
    }
    ws.send(pcm);
    this.stats.framesSent++;
    this.stats.bytesSent += pcm.byteLength;
    return true;
  }

  // -- control messages -----------------------------------------------------------------------

  /**
   * Send a typed message in the voice session. Queued while reconnecting.
   * @param {string} text
   */
  sendText(text) {
    const t = typeof text === 'string' ? text.trim() : '';
    if (!t) throw new ParleyError('invalid_text', 'The message is empty');
    if (t.length > MAX_TEXT_LENGTH) throw new ParleyError('invalid_text', `The message is longer than ${MAX_TEXT_LENGTH} characters`);
    const msg = { type: 'text_message', text: t };
    if (this._sendJson(msg)) return true;
    if (this.state === 'reconnecting' || this.state === 'connecting') {
      this._outbox.push(msg);
      return true;
    }
    throw new ParleyError('not_connected', 'Not connected');
  }

  /**
   * Push-to-talk: 'start' sends audio_start, 'stop' sends audio_stop (the turn ends now).
   * @param {'start'|'stop'|boolean} action
   */
  pushToTalk(action) {
    const start = action === true || action === 'start';
    if (!start && action !== false && action !== 'stop') throw new ParleyError('invalid_argument', 'pushToTalk expects "start" or "stop"');
    this._pttActive = start;
    this._sendMicrophone();
    return this._sendJson({ type: start ? 'audio_start' : 'audio_stop' });
  }

  /** Ask the assistant to stop talking. Playback is flushed locally at once. */
  interrupt() {
    if (this.audioTurnId != null) {
      this._dropAudioTurn = this.audioTurnId;
      this._dropAudio = true;
    }
    this._flushPlayback('local_interrupt');
    return this._sendJson({ type: 'interrupt' });
  }

  /** Send a ping now (normally automatic every `pingIntervalMs`). */
  ping() {
    const ok = this._sendJson({ type: 'ping', ts: this._now() });
    if (ok) this.stats.pingsSent++;
    return ok;
  }

  // -- internals ------------------------------------------------------------------------------

  /** Over WebRTC, the microphone track to send now: none while push-to-talk is released. */
  _sendMicrophone() {
    if (this.ws instanceof WebRtcSocket) this.ws.setMicrophone(this._microphoneNow());
  }

  _microphoneNow() {
    return this.pushToTalkOnly && !this._pttActive ? null : this._micTrack;
  }

  /** @param {any} session */
  _adoptSession(session) {
    if (!session || !session.id) throw new ParleyError('protocol_error', 'The server returned no session id');
    this.session = session;
    this.sessionId = session.id;
    if (session.config) this.config = { ...this.config, ...normalizeConfig(session.config) };
    if (session.config && session.config.output_sample_rate) this.outputSampleRate = session.config.output_sample_rate;
    this.wsUrl = resolveWsUrl(session.ws_url || session.wsUrl, this.api.base, session.id);
    this._closing = false;
    this._attempt = 0;
    this._everReady = false;
    this.transport = null;
    this.emit('session', session);
  }

  _openAndWait() {
    let resolve = () => {};
    let reject = () => {};
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this._readyWaiter = { resolve, reject, promise };
    this._chooseTransport();
    return promise;
  }

  /**
   * The call's transport, then its first connection: WebRTC when allowed, the browser has it
   * and the server offers it (GET /api/v1/webrtc), else the WebSocket at once.
   */
  _chooseTransport() {
    const option = this.transportOption;
    if (option === 'websocket' || typeof this._RTCPeerConnection !== 'function') {
      if (option === 'webrtc') {
        this._webrtcUnavailable('This browser cannot make WebRTC calls.');
        return;
      }
      this._useTransport('websocket');
      this._open();
      return;
    }
    const seq = this._openSeq;
    this.api.webrtcConfig().then(
      (setup) => {
        this._webrtcSetup = setup;
        this._useTransport('webrtc');
      },
      (err) => this._useTransport('websocket', `the server offers no WebRTC (${(err && err.code) || 'error'})`),
    ).then(() => {
      if (this._closing || this._openSeq !== seq) return;
      if (this.transport === 'websocket' && option === 'webrtc') this._webrtcUnavailable('The server does not offer WebRTC calls.');
      else this._open();
    });
  }

  /** @param {string} message */
  _webrtcUnavailable(message) {
    const err = new ParleyError('webrtc_unavailable', message);
    this._emitError(err, 'client', true);
    this._setState('closed');
    this._rejectReady(err);
  }

  /** @param {'webrtc'|'websocket'} transport @param {string} [reason] */
  _useTransport(transport, reason) {
    this.transport = transport;
    this.emit('transport', reason ? { transport, reason } : { transport });
  }

  /**
   * Connect over WebRTC (attempt `attempt`): the offer goes through ParleyApi, so the token is
   * its Authorization header. A first connection that never opens falls back to the WebSocket
   * unless WebRTC was asked for.
   * @param {number} attempt
   */
  _openWebRtc(attempt) {
    const sessionId = /** @type {string} */ (this.sessionId);
    const conn = new WebRtcSocket({
      RTCPeerConnection: this._RTCPeerConnection,
      setup: this._webrtcSetup,
      signal: (offer) => this.api.webrtcOffer(sessionId, offer),
      microphone: this._microphoneNow(),
      // A track that comes after the connection opened plays at once (see _onOpen).
      onRemoteStream: (stream) => {
        if (conn === this.ws && conn.readyState === WS_OPEN) this._playStream(stream);
      },
      timers: this._timers,
    });
    this._wire(conn);
    conn.onclose = (/** @type {any} */ ev) => {
      const code = ev && typeof ev.code === 'number' ? ev.code : 1006;
      if (conn === this.ws && this._openSeq === attempt && !this._everReady && this.transportOption === 'auto' && !FINAL_CLOSES[code]) {
        this._teardownSocket(1000, 'falling back to the WebSocket');
        this._useTransport('websocket', (ev && ev.reason) || 'WebRTC could not connect');
        this._open();
        return;
      }
      this._onClose(conn, ev);
    };
  }

  /** Route the events of a new connection (a WebSocket or a WebRtcSocket) to this client. @param {any} ws */
  _wire(ws) {
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (/** @type {any} */ ev) => this._onMessage(ws, ev);
    ws.onclose = (/** @type {any} */ ev) => this._onClose(ws, ev);
    ws.onerror = () => {
      /* a close event follows; errors carry no detail in browsers */
    };
  }

  _rejectReady(/** @type {Error} */ err) {
    const w = this._readyWaiter;
    if (w) {
      this._readyWaiter = null;
      w.promise.catch(() => {});
      w.reject(err);
    }
  }

  _open() {
    const WS = this._WebSocket;
    if (typeof WS !== 'function' && this.transport !== 'webrtc') {
      const err = new ParleyError('config_error', 'No WebSocket implementation available');
      this._emitError(err, 'client', true);
      this._setState('closed');
      this._rejectReady(err);
      return;
    }
    const attempt = ++this._openSeq;
    this._clearTimer('_connectTimer');
    // Covers getting the token too: a token function that never answers is a failed attempt.
    this._connectTimer = this._timers.setTimeout(() => {
      if (this._openSeq === attempt && (!this.ready || this.state !== 'connected')) this._handleDrop(this.ws, 'connect timeout');
    }, this.connectTimeoutMs);
    if (this.transport === 'webrtc') {
      this._openWebRtc(attempt);
      return;
    }
    let token;
    try {
      token = this.api.resolveToken();
    } catch (err) {
      this._tokenFailed(err);
      return;
    }
    if (token instanceof Promise) {
      token.then(
        (t) => this._openSeq === attempt && !this._closing && this._openSocket(WS, t),
        (err) => this._openSeq === attempt && !this._closing && this._tokenFailed(err),
      );
    } else {
      this._openSocket(WS, token);
    }
  }

  /**
   * Open the socket with the token of this attempt (asked anew at each reconnect, so a
   * refreshed one is used). `wsUrl` itself stays free of it.
   * @param {any} WS @param {string|null} token
   */
  _openSocket(WS, token) {
    let ws;
    try {
      ws = new WS(withToken(/** @type {string} */ (this.wsUrl), token));
    } catch (cause) {
      this._handleDrop(null, 'websocket constructor failed');
      return;
    }
    this._wire(ws);
  }

  /**
   * The token function failed: said once per attempt, then retried like a lost connection
   * (a refresh may fail while the network is down).
   * @param {unknown} err
   */
  _tokenFailed(err) {
    const e = tokenUnavailable(err);
    if (e.code === 'config_error') {
      this._emitError(e, 'client', true);
      this._clearTimer('_connectTimer');
      this._setState('closed');
      this._rejectReady(e);
      return;
    }
    this._emitError(e, 'client', false);
    this._handleDrop(null, 'token unavailable');
  }

  /** @param {any} ws */
  _onOpen(ws) {
    if (ws !== this.ws) return;
    // The assistant's WebRTC audio plays once connected (a failed attempt never reaches here).
    if (ws instanceof WebRtcSocket && ws.remoteStream) this._playStream(ws.remoteStream);
    this._lastMessageAt = this._now();
    this._startHeartbeat();
    this.ping();
  }

  /** @param {any} ws @param {any} ev */
  _onMessage(ws, ev) {
    if (ws !== this.ws) return;
    this._lastMessageAt = this._now();
    const data = ev.data;
    if (typeof data === 'string') {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        this._emitError(new ParleyError('protocol_error', 'The server sent a message that is not JSON'), 'client', false);
        return;
      }
      this.stats.messagesReceived++;
      this.handleMessage(msg);
      return;
    }
    if (data && typeof data.arrayBuffer === 'function' && !(data instanceof ArrayBuffer)) {
      // A Blob (binaryType not honoured): read it, keeping order best-effort.
      data.arrayBuffer().then((/** @type {ArrayBuffer} */ buf) => this._onAudio(buf));
      return;
    }
    if (data instanceof ArrayBuffer) this._onAudio(data);
    else if (ArrayBuffer.isView(data)) this._onAudio(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  }

  /**
   * Dispatch one parsed server message (exposed for tests and custom transports).
   * @param {any} msg
   */
  handleMessage(msg) {
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') {
      this._emitError(new ParleyError('protocol_error', 'The server sent a message without a type'), 'client', false);
      return;
    }
    this.emit('message', msg);
    const d = msg.data && typeof msg.data === 'object' ? msg.data : {};
    switch (msg.type) {
      case 'ready': {
        this.ready = d;
        if (d.session_id && !this.sessionId) this.sessionId = d.session_id;
        if (d.config) this.config = { ...this.config, ...normalizeConfig(d.config) };
        this.outputSampleRate = d.output_sample_rate || (d.config && d.config.output_sample_rate) || this.outputSampleRate;
        this.audioSampleRate = this.outputSampleRate;
        if (this.player && typeof this.player.setSampleRate === 'function') this.player.setSampleRate(this.outputSampleRate);
        const resumed = this._everReady;
        this._everReady = true;
        this._clearTimer('_stableTimer');
        this._stableTimer = this._timers.setTimeout(() => {
          this._stableTimer = null;
          this._attempt = 0;
        }, this.reconnectPolicy.resetAfterMs);
        if (this.startedAt == null) this.startedAt = this._now();
        this._clearTimer('_connectTimer');
        this._setState('connected');
        this.emit('ready', {
          sessionId: d.session_id || this.sessionId,
          config: d.config || null,
          inputSampleRate: d.input_sample_rate || INPUT_SAMPLE_RATE,
          outputSampleRate: this.outputSampleRate,
          resumed,
        });
        const queued = this._outbox.splice(0);
        for (const m of queued) this._sendJson(m);
        const w = this._readyWaiter;
        if (w) {
          this._readyWaiter = null;
          w.resolve(this.session || { id: this.sessionId });
        }
        break;
      }
      case 'pong':
        this._onPong(d);
        break;
      case 'speech_started':
        this.emit('speechStarted', { atMs: d.at_ms ?? null });
        break;
      case 'speech_stopped':
        this.emit('speechStopped', { atMs: d.at_ms ?? null, durationMs: d.duration_ms ?? null });
        break;
      case 'transcript':
        this.emit('transcript', {
          role: d.role || 'user',
          text: d.text || '',
          isFinal: !!d.is_final,
          partial: d.partial ?? !d.is_final,
          confidence: typeof d.confidence === 'number' ? d.confidence : null,
          language: d.language ?? null,
          turnId: d.turn_id ?? null,
          interrupted: !!d.interrupted,
          emotion: d.emotion ?? null,
        });
        break;
      case 'response':
        this.emit('response', { turnId: d.turn_id ?? null, text: d.text || '', done: !!d.done });
        break;
      case 'audio_start':
        this.audioTurnId = d.turn_id ?? null;
        this.audioSampleRate = d.sample_rate || this.outputSampleRate;
        this._dropAudio = false;
        this._dropAudioTurn = null;
        this._paused = false;
        this._oddByte = null;
        if (this.player && typeof this.player.startTurn === 'function') this.player.startTurn(this.audioTurnId, this.audioSampleRate);
        this.emit('audioStart', { turnId: this.audioTurnId, sampleRate: this.audioSampleRate, encoding: d.encoding || 'pcm_s16le' });
        break;
      case 'audio_end':
        if (this.player && typeof this.player.endTurn === 'function' && !this._dropAudio) this.player.endTurn(d.turn_id ?? this.audioTurnId);
        this.emit('audioEnd', { turnId: d.turn_id ?? this.audioTurnId });
        break;
      case 'interrupted': {
        const turnId = d.turn_id ?? this.audioTurnId;
        this.turns.interrupted++;
        // Already flushed by a local interrupt() of this very turn: nothing is queued any more.
        const alreadyFlushed = this._dropAudio && turnId != null && this._dropAudioTurn === turnId;
        // Audio of this turn still in flight is discarded until the next audio_start.
        if (turnId != null && (this.audioTurnId == null || turnId === this.audioTurnId)) {
          this._dropAudioTurn = turnId;
          this._dropAudio = true;
        }
        if (!alreadyFlushed) this._flushPlayback('interrupted', turnId);
        this._paused = false;
        this.emit('interrupted', { turnId, heardText: d.heard_text ?? null });
        break;
      }
      case 'audio_pause': {
        // The user spoke over the assistant. What is buffered is dropped: if the server
        // resumes, it sends the rest again from where playback stopped, so nothing is lost
        // or heard twice; audio still on its way until then is stale too.
        const turnId = d.turn_id ?? this.audioTurnId;
        this._paused = true;
        this._flushPlayback('paused', turnId);
        this.emit('audioPause', { turnId });
        break;
      }
      case 'audio_resume':
        this._paused = false;
        this.emit('audioResume', { turnId: d.turn_id ?? this.audioTurnId });
        break;
      case 'metrics': {
        const m = {
          turnId: d.turn_id ?? null,
          sttFinalMs: d.stt_final_ms ?? null,
          llmFirstTokenMs: d.llm_first_token_ms ?? null,
          ttsFirstByteMs: d.tts_first_byte_ms ?? null,
          voiceToVoiceMs: d.voice_to_voice_ms ?? null,
          interruptMs: d.interrupt_ms ?? null,
        };
        this.turnMetrics.push(m);
        this.emit('metrics', m);
        break;
      }
      case 'action':
        // A tool the assistant called acts on the call; end_call is followed by the socket's
        // close (4410) once the goodbye has played.
        this.emit('action', { turnId: d.turn_id ?? null, action: d.action });
        break;
      case 'error':
        this.emit('error', {
          code: d.code || 'server_error',
          message: d.message || 'The server reported an error',
          source: 'server',
          fatal: false,
          recoverable: true,
        });
        break;
      default:
        if (S2_EVENTS.includes(msg.type)) this.emit('legacy', msg);
        // Unknown types are ignored (forward compatibility); they are visible via `message`.
        break;
    }
  }

  /** @param {ArrayBuffer} buf */
  _onAudio(buf) {
    this.stats.bytesReceived += buf.byteLength;
    if (this._dropAudio || this._paused) {
      this.stats.chunksDiscarded++;
      return;
    }
    // Keep sample alignment if a frame ever carries an odd number of bytes.
    let bytes = new Uint8Array(buf);
    if (this._oddByte) {
      const merged = new Uint8Array(bytes.length + 1);
      merged[0] = this._oddByte[0];
      merged.set(bytes, 1);
      bytes = merged;
      this._oddByte = null;
    }
    if (bytes.length % 2 === 1) {
      this._oddByte = bytes.slice(bytes.length - 1);
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (bytes.length === 0) return;
    const pcm = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? /** @type {ArrayBuffer} */ (bytes.buffer)
      : bytes.slice().buffer;
    this.stats.chunksReceived++;
    const chunk = { pcm, sampleRate: this.audioSampleRate, turnId: this.audioTurnId };
    if (this.player) this.player.push(pcm, this.audioSampleRate, this.audioTurnId);
    this.emit('audio', chunk);
  }

  /**
   * Play the assistant's WebRTC audio: through the player when it can play a stream, else in an
   * audio element of its own.
   * @param {MediaStream} stream
   */
  _playStream(stream) {
    if (this.player && typeof this.player.playStream === 'function') {
      this.player.playStream(stream);
      return;
    }
    const doc = /** @type {any} */ (globalThis).document;
    if (!doc) return;
    if (!this._audioElement) this._audioElement = doc.createElement('audio');
    const el = this._audioElement;
    el.autoplay = true;
    el.srcObject = stream;
    const played = typeof el.play === 'function' ? el.play() : null;
    if (played && typeof played.catch === 'function') played.catch(() => {});
  }

  /** @param {string} reason @param {number|null} [turnId] */
  _flushPlayback(reason, turnId = this.audioTurnId) {
    this.stats.flushes++;
    if (this.player && typeof this.player.flush === 'function') this.player.flush(reason);
    if (typeof this.options.onFlush === 'function') {
      try {
        this.options.onFlush({ reason, turnId });
      } catch {
        /* ignore */
      }
    }
    this.emit('flush', { reason, turnId });
  }

  /** @param {any} d */
  _onPong(d) {
    this.stats.pongsReceived++;
    if (typeof d.ts !== 'number') return;
    const rtt = Math.max(0, this._now() - d.ts);
    this._rtts.push(rtt);
    if (this._rtts.length > 16) this._rtts.shift();
    let jitter = 0;
    if (this._rtts.length > 1) {
      let sum = 0;
      for (let i = 1; i < this._rtts.length; i++) sum += Math.abs(this._rtts[i] - this._rtts[i - 1]);
      jitter = sum / (this._rtts.length - 1);
    }
    this.network.rttMs = Math.round(rtt * 10) / 10;
    this.network.jitterMs = Math.round(jitter * 10) / 10;
    this.emit('pong', { rttMs: this.network.rttMs, ts: d.ts, serverTs: d.server_ts ?? null });
    this._emitNetwork();
  }

  _emitNetwork() {
    const now = this._now();
    this._reconnectTimes = this._reconnectTimes.filter((t) => now - t < 60000);
    this.network.reconnects = this.stats.reconnects;
    this.network.quality = networkQuality({
      rttMs: this.network.rttMs,
      jitterMs: this.network.jitterMs,
      recentReconnects: this._reconnectTimes.length,
      state: this.state,
    });
    this.emit('network', { ...this.network });
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    this._pingTimer = this._timers.setInterval(() => this.ping(), this.pingIntervalMs);
    this._staleTimer = this._timers.setInterval(() => {
      if (this.ws && this._now() - this._lastMessageAt > this.staleAfterMs) this._handleDrop(this.ws, 'no data from server');
    }, Math.max(250, Math.floor(this.staleAfterMs / 4)));
  }

  /** Stops the timers of the current connection (it is gone or about to be). */
  _stopHeartbeat() {
    this._clearTimer('_stableTimer');
    if (this._pingTimer != null) this._timers.clearInterval(this._pingTimer);
    if (this._staleTimer != null) this._timers.clearInterval(this._staleTimer);
    this._pingTimer = null;
    this._staleTimer = null;
  }

  /** @param {'_connectTimer'|'_reconnectTimer'|'_stableTimer'} name */
  _clearTimer(name) {
    if (this[name] != null) this._timers.clearTimeout(this[name]);
    this[name] = null;
  }

  /** @param {number} code @param {string} reason */
  _teardownSocket(code, reason) {
    this._openSeq++; // an attempt still waiting for its token is over too
    this._stopHeartbeat();
    this._clearTimer('_connectTimer');
    this._clearTimer('_reconnectTimer');
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    }
  }

  /** @param {any} ws @param {any} ev */
  _onClose(ws, ev) {
    if (ws !== this.ws) return;
    const code = ev && typeof ev.code === 'number' ? ev.code : 1006;
    const reason = (ev && ev.reason) || '';
    this._stopHeartbeat();
    this._clearTimer('_connectTimer');
    this.ws = null;
    if (this._closing) {
      this._setState('closed', { code, reason });
      return;
    }
    /** @type {{code: string, message: string, serverReason?: boolean}|null} */
    let fatal = FINAL_CLOSES[code] || null;
    if (code === CLOSE_CODES.PROTOCOL_ERROR) fatal = { code: 'protocol_error', message: 'The server rejected a message from this client.', serverReason: true };
    else if (code === CLOSE_CODES.NORMAL) fatal = { code: 'session_closed', message: 'The server closed the conversation.', serverReason: true };
    if (fatal) {
      this.stopMicrophone();
      this._flushPlayback('closed');
      const err = new ParleyError(fatal.code, (fatal.serverReason && reason) || fatal.message);
      this._emitError(err, 'network', true, { closeCode: code });
      this._setState('closed', { code, reason, error: fatal.code });
      this._rejectReady(err);
      return;
    }
    this._handleDrop(null, reason || `connection closed (${code})`, code);
  }

  /**
   * The connection is gone or unusable: schedule a reconnect to the same session.
   * @param {any} ws socket to abandon (null when already closed)
   * @param {string} reason
   * @param {number} [code]
   */
  _handleDrop(ws, reason, code = 1006) {
    if (ws) {
      if (ws !== this.ws) return;
      this._teardownSocket(4000, reason);
    } else {
      this._openSeq++;
      this._stopHeartbeat();
      this._clearTimer('_connectTimer');
      this.ws = null;
    }
    if (this._closing) return;
    if (this.state === 'connected') {
      this.stats.reconnects++;
      this._reconnectTimes.push(this._now());
      // Audio of the turn in flight is lost with the socket: do not keep playing a fragment.
      this._flushPlayback('connection_lost');
    }
    this._attempt++;
    const { maxAttempts, baseDelayMs, maxDelayMs } = this.reconnectPolicy;
    if (this._attempt > maxAttempts) {
      const err = new ParleyError('reconnect_failed', 'Lost the connection to the server and could not reconnect.');
      this.stopMicrophone();
      this._emitError(err, 'network', true, { closeCode: code });
      this._setState('closed', { code, reason });
      this._rejectReady(err);
      return;
    }
    const exp = Math.min(maxDelayMs, baseDelayMs * 2 ** (this._attempt - 1));
    const delayMs = Math.round(exp * (0.75 + 0.5 * this._random()));
    this._setState('reconnecting', { attempt: this._attempt, delayMs, code, reason });
    this._clearTimer('_reconnectTimer');
    this._reconnectTimer = this._timers.setTimeout(() => {
      this._reconnectTimer = null;
      if (!this._closing) this._open();
    }, delayMs);
  }

  /** @param {Record<string, any>} msg */
  _sendJson(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * @param {string} state
   * @param {Record<string, any>} [extra]
   */
  _setState(state, extra = {}) {
    const previous = this.state;
    this.state = /** @type {any} */ (state);
    if (previous === state && state !== 'reconnecting') return;
    this.emit('state', { state, previous, ...extra });
    if (state === 'reconnecting' || state === 'closed' || state === 'connected') this._emitNetwork();
  }

  /**
   * @param {any} err
   * @param {string} source
   * @param {boolean} fatal
   * @param {Record<string, any>} [extra]
   */
  _emitError(err, source, fatal, extra = {}) {
    this.emit('error', {
      code: err && err.code ? err.code : 'client_error',
      message: err && err.message ? err.message : String(err),
      source,
      fatal,
      recoverable: !!(err && err.recoverable),
      status: err && err.status != null ? err.status : undefined,
      ...extra,
    });
  }
}

/**
 * Keeps the visible conversation from client events: user partials replaced in place, finals
 * with confidence, assistant answers built from `response` deltas, interrupted answers marked.
 */
export class ConversationLog extends Emitter {
  constructor() {
    super();
    /** @type {LogEntry[]} */
    this.entries = [];
    this._seq = 0;
  }

  /**
   * Subscribe to a client's events; returns a function that unsubscribes.
   * @param {ParleyClient} client
   */
  attach(client) {
    const offs = [
      client.on('transcript', (t) => this.applyTranscript(t)),
      client.on('response', (r) => this.applyResponse(r)),
      client.on('interrupted', (i) => this.applyInterrupted(i)),
    ];
    return () => offs.forEach((off) => off());
  }

  clear() {
    this.entries = [];
    this._changed();
  }

  /** @param {Partial<LogEntry>} fields */
  _add(fields) {
    const entry = {
      id: `e${++this._seq}`,
      role: 'user',
      turnId: null,
      text: '',
      final: false,
      confidence: null,
      interrupted: false,
      typed: false,
      heardText: null,
      emotion: null,
      ...fields,
    };
    this.entries.push(/** @type {any} */ (entry));
    return entry;
  }

  /** @param {number|null} turnId @param {string} role */
  _find(turnId, role) {
    if (turnId == null) return null;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.role === role && e.turnId === turnId) return e;
    }
    return null;
  }

  _changed() {
    this.emit('change', this.entries);
  }

  /** A message the user typed, shown at once. @param {string} text */
  addTyped(text) {
    const e = this._add({ role: 'user', text, final: true, typed: true });
    this._changed();
    return e;
  }

  /** @param {{role: string, text: string, isFinal: boolean, confidence?: number|null, turnId?: number|null, interrupted?: boolean, emotion?: Emotion|null}} t */
  applyTranscript(t) {
    const role = t.role || 'user';
    const turnId = t.turnId ?? null;
    if (role === 'user') {
      let e = this._find(turnId, 'user');
      if (!e) {
        // The open (partial) user entry, if any.
        const last = this.entries[this.entries.length - 1];
        const open = [...this.entries].reverse().find((x) => x.role === 'user' && !x.final && !x.typed);
        if (open) e = open;
        else if (t.isFinal && last && last.role === 'user' && last.typed && last.turnId == null
          && last.text.trim() === (t.text || '').trim()) {
          e = last; // the server's echo of a typed message
        }
      }
      if (!e) {
        if (!t.text && !t.isFinal) return null;
        e = this._add({ role: 'user', turnId });
      }
      if (turnId != null) e.turnId = turnId;
      if (t.text || t.isFinal) e.text = t.text;
      if (t.isFinal) {
        e.final = true;
        if (t.confidence != null) e.confidence = t.confidence;
        if (t.emotion) e.emotion = t.emotion;
      }
      if (e.final && !e.text.trim() && !e.typed) {
        // An empty final (noise): drop the placeholder.
        this.entries.splice(this.entries.indexOf(e), 1);
        this._changed();
        return null;
      }
      this._changed();
      return e;
    }
    let e = this._find(turnId, role);
    if (!e) e = this._add({ role, turnId });
    if (t.text) e.text = t.text;
    if (t.isFinal) e.final = true;
    if (t.confidence != null) e.confidence = t.confidence;
    if (t.interrupted) e.interrupted = true;
    this._changed();
    return e;
  }

  /**
   * `response` events: with done=false the text is a piece to append (a cumulative text,
   * i.e. one that starts with what we have, replaces it); done=true carries the full answer.
   * @param {{turnId: number|null, text: string, done: boolean}} r
   */
  applyResponse(r) {
    let e = this._find(r.turnId, 'assistant');
    if (!e) {
      if (!r.text && r.done) return null;
      e = this._add({ role: 'assistant', turnId: r.turnId });
    }
    const cur = e.text;
    const text = r.text || '';
    if (!r.done) {
      if (cur && text.length > cur.length && text.startsWith(cur)) e.text = text;
      else e.text = cur + text;
    } else {
      if (text) {
        if (text.startsWith(cur) || text.length >= cur.length) e.text = text;
        else if (!cur.endsWith(text)) e.text = cur + text;
      }
      e.final = true;
    }
    this._changed();
    return e;
  }

  /** @param {{turnId: number|null, heardText?: string|null}} i */
  applyInterrupted(i) {
    let e = this._find(i.turnId, 'assistant');
    if (!e) e = [...this.entries].reverse().find((x) => x.role === 'assistant') || null;
    if (!e) return null;
    e.interrupted = true;
    e.final = true;
    if (i.heardText) e.heardText = i.heardText;
    this._changed();
    return e;
  }
}

export default ParleyClient;
