/**
 * The WebRTC transport of the Parley client: the session's audio as Opus on one audio track
 * each way (the browser's jitter buffer, and echo cancellation that hears what is played), and
 * the WebSocket protocol's JSON messages, unchanged, on one data channel. To ParleyClient it is
 * a WebSocket-like object (readyState, send, close, onopen/onmessage/onclose), so the protocol
 * code is the same for both transports.
 *
 * Signalling (libs/common/parley_common/contracts/webrtc.py): `GET /api/v1/webrtc` gives the
 * ICE servers and the data channel's parameters; the offer goes, once ICE gathering is
 * complete (no trickle), to `POST /api/v1/sessions/{id}/webrtc`, whose answer carries every
 * candidate too. The data channel's one message of its own is `{"type":"close", code, reason}`:
 * the WebSocket's close frame, with the same codes.
 *
 * No browser API is touched at import time; `RTCPeerConnection` is injected or looked up when a
 * connection is made.
 * @module parley-webrtc
 */

/** The `transport` option: `auto` uses WebRTC when the browser and the server can. */
export const TRANSPORTS = Object.freeze(['auto', 'webrtc', 'websocket']);

/** How long ICE gathering may take before the offer is sent with the candidates found so far. */
export const GATHER_TIMEOUT_MS = 3000;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/** What a WebSocket reports when the connection is lost without a close frame. */
const ABNORMAL = 1006;
const CLOSE_PREFIX = '{"type":"close"';

/**
 * The WebSocket close code that a refused signalling request stands for, so the client treats
 * it as it treats the socket's: 401 -> 4401, 403 -> 4403, an unknown session 4404, an ended one
 * 4410; anything else (the network, a 5xx, capacity) is a lost connection, 1006, to retry.
 * @param {any} err a ParleyError from ParleyApi
 * @returns {number}
 */
export function signallingCloseCode(err) {
  const status = err && err.status;
  const code = err && err.code;
  if (status === 401) return 4401;
  if (status === 403) return 4403;
  if (code === 'session_not_found') return 4404;
  if (code === 'session_ended' || status === 409) return 4410;
  return ABNORMAL;
}

/**
 * `RTCIceServer`s from the server's `ice_servers` (nulls left out: browsers refuse them).
 * @param {Array<{urls: string[], username?: string|null, credential?: string|null}>} servers
 * @returns {RTCIceServer[]}
 */
export function iceServers(servers) {
  return (servers || []).map((s) => {
    /** @type {RTCIceServer} */
    const out = { urls: s.urls };
    if (s.username != null) out.username = s.username;
    if (s.credential != null) out.credential = s.credential;
    return out;
  });
}

/**
 * Resolves once `pc` has gathered every ICE candidate, or after `timeoutMs` (the offer then
 * carries what was found: enough unless a STUN/TURN server is slow).
 * @param {RTCPeerConnection} pc
 * @param {number} timeoutMs
 * @param {{setTimeout: Function, clearTimeout: Function}} timers
 * @returns {Promise<void>}
 */
export function iceGathered(pc, timeoutMs, timers) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      timers.clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = timers.setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/**
 * @typedef {object} WebRtcSetup what `GET /api/v1/webrtc` returns
 * @property {Array<{urls: string[], username?: string|null, credential?: string|null}>} ice_servers
 * @property {{label: string, id: number}} data_channel
 */

/**
 * @typedef {object} WebRtcSocketOptions
 * @property {any} RTCPeerConnection the constructor
 * @property {WebRtcSetup} setup
 * @property {(offer: {type: 'offer', sdp: string}) => Promise<{type: string, sdp: string}>} signal sends the offer, resolves with the answer
 * @property {MediaStreamTrack|null} [microphone] the track to send (null: silence until setMicrophone)
 * @property {(stream: MediaStream) => void} [onRemoteStream] the assistant's audio, once it arrives
 * @property {number} [gatherTimeoutMs]
 * @property {{setTimeout: Function, clearTimeout: Function}} [timers]
 */

/**
 * One WebRTC connection to a session, behaving like the WebSocket it replaces: `onopen` when
 * the data channel opens, `onmessage({data})` for each JSON message, `onclose({code, reason})`
 * once (the server's `close` message, a failed connection, a refused offer or `close()`).
 * Binary `send`s are ignored: the microphone goes on the audio track.
 */
export class WebRtcSocket {
  /** @param {WebRtcSocketOptions} opts */
  constructor(opts) {
    this.opts = opts;
    this.readyState = CONNECTING;
    this.binaryType = 'arraybuffer';
    /** @type {((ev: any) => void)|null} */ this.onopen = null;
    /** @type {((ev: any) => void)|null} */ this.onmessage = null;
    /** @type {((ev: any) => void)|null} */ this.onclose = null;
    /** @type {((ev: any) => void)|null} */ this.onerror = null;
    /** @type {MediaStream|null} the assistant's audio */
    this.remoteStream = null;
    this._timers = opts.timers || globalThis;
    const PC = opts.RTCPeerConnection;
    /** @type {RTCPeerConnection} */
    this.pc = new PC({ iceServers: iceServers(opts.setup.ice_servers) });
    this._audio = this.pc.addTransceiver(opts.microphone || 'audio', { direction: 'sendrecv' });
    const spec = opts.setup.data_channel;
    this.channel = this.pc.createDataChannel(spec.label, { negotiated: true, id: spec.id, ordered: true });
    this.channel.onopen = () => this._opened();
    this.channel.onmessage = (/** @type {MessageEvent} */ ev) => this._received(ev.data);
    this.channel.onclose = () => this._closed(ABNORMAL, 'the data channel closed');
    this.pc.ontrack = (/** @type {RTCTrackEvent} */ ev) => {
      const MS = /** @type {any} */ (globalThis).MediaStream;
      this.remoteStream = ev.streams && ev.streams[0] ? ev.streams[0] : new MS([ev.track]);
      if (this.opts.onRemoteStream) this.opts.onRemoteStream(/** @type {MediaStream} */ (this.remoteStream));
    };
    this.pc.onconnectionstatechange = () => {
      // "disconnected" may recover by itself; "failed" will not.
      if (this.pc.connectionState === 'failed') this._closed(ABNORMAL, 'the WebRTC connection failed');
    };
    this._negotiate().catch((err) => this._closed(signallingCloseCode(err), (err && err.message) || 'the WebRTC offer was refused'));
  }

  async _negotiate() {
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, this.opts.gatherTimeoutMs ?? GATHER_TIMEOUT_MS, this._timers);
    if (this.readyState === CLOSED) return;
    const local = /** @type {RTCSessionDescription} */ (pc.localDescription);
    const answer = await this.opts.signal({ type: 'offer', sdp: local.sdp });
    if (this.readyState === CLOSED) return;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  }

  /** Unsent data channel bytes (what a WebSocket calls `bufferedAmount`). */
  get bufferedAmount() {
    return this.channel.bufferedAmount || 0;
  }

  /** @param {string | ArrayBuffer | ArrayBufferView} data */
  send(data) {
    if (this.readyState !== OPEN) throw new Error('InvalidStateError: the WebRTC connection is not open');
    if (typeof data === 'string') this.channel.send(data);
  }

  /**
   * Send `track` as the microphone from now on (null: nothing), without renegotiating.
   * @param {MediaStreamTrack|null} track
   */
  setMicrophone(track) {
    if (this.readyState === CLOSED) return Promise.resolve();
    return this._audio.sender.replaceTrack(track || null).catch(() => {});
  }

  /** The connection's RTCStatsReport. */
  getStats() {
    return this.pc.getStats();
  }

  /**
   * Hang up; `onclose` follows with `code` and `reason`, as after a WebSocket's close().
   * @param {number} [code] @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSING;
    this._shutdown();
    this._timers.setTimeout(() => this._closed(code, reason), 0);
  }

  _opened() {
    if (this.readyState !== CONNECTING) return;
    this.readyState = OPEN;
    if (this.onopen) this.onopen({});
  }

  /** @param {any} data */
  _received(data) {
    if (this.readyState === CLOSED || typeof data !== 'string') return;
    if (data.startsWith(CLOSE_PREFIX)) {
      let close = null;
      try {
        close = JSON.parse(data);
      } catch {
        close = null;
      }
      if (close && close.type === 'close') {
        this._closed(typeof close.code === 'number' ? close.code : ABNORMAL, close.reason || '');
        return;
      }
    }
    if (this.onmessage) this.onmessage({ data });
  }

  /** @param {number} code @param {string} reason */
  _closed(code, reason) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this._shutdown();
    if (this.onclose) this.onclose({ code, reason, wasClean: code === 1000 });
  }

  _shutdown() {
    const pc = this.pc;
    pc.ontrack = pc.onconnectionstatechange = null;
    this.channel.onopen = this.channel.onmessage = this.channel.onclose = null;
    try {
      this.channel.close();
      pc.close();
    } catch {
      /* already closed */
    }
  }
}
