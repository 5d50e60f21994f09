// Test double of the browser's RTCPeerConnection, driven from the "gateway" side: the test opens
// the data channel, delivers the assistant's track, sends messages or fails the connection.

/** A data channel whose other end is the test. */
export class FakeDataChannel {
  /** @param {string} label @param {any} options */
  constructor(label, options) {
    this.label = label;
    this.options = options;
    this.readyState = 'connecting';
    this.bufferedAmount = 0;
    /** @type {string[]} */
    this.sent = [];
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== 'open') throw new Error('InvalidStateError: the channel is not open');
    this.sent.push(data);
  }

  close() {
    this.readyState = 'closed';
  }

  json() {
    return this.sent.map((s) => JSON.parse(s));
  }

  // -- gateway side --
  open() {
    this.readyState = 'open';
    if (this.onopen) this.onopen();
  }

  /** @param {any} obj */
  serverSend(obj) {
    if (this.onmessage) this.onmessage({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }

  serverClose() {
    this.readyState = 'closed';
    if (this.onclose) this.onclose();
  }
}

/**
 * An RTCPeerConnection class recording what the client does. `gather`: 'instant' completes ICE
 * gathering with setLocalDescription, 'never' leaves it gathering (the client's timeout sends
 * the offer).
 * @param {{gather?: 'instant'|'never'}} [opts]
 */
export function makeFakeRtc(opts = {}) {
  const gather = opts.gather || 'instant';
  class FakeRTCPeerConnection {
    /** @type {FakeRTCPeerConnection[]} */
    static instances = [];

    /** @param {any} config */
    constructor(config) {
      this.config = config;
      /** @type {any[]} */
      this.transceivers = [];
      /** @type {FakeDataChannel[]} */
      this.channels = [];
      this.iceGatheringState = 'new';
      this.connectionState = 'new';
      /** @type {any} */ this.localDescription = null;
      /** @type {any} */ this.remoteDescription = null;
      this.closed = false;
      this.ontrack = null;
      this.onconnectionstatechange = null;
      /** @type {Map<string, Set<Function>>} */
      this._listeners = new Map();
      FakeRTCPeerConnection.instances.push(this);
    }

    static last() {
      return FakeRTCPeerConnection.instances[FakeRTCPeerConnection.instances.length - 1];
    }

    /** @param {any} trackOrKind @param {any} init */
    addTransceiver(trackOrKind, init) {
      const sender = {
        track: typeof trackOrKind === 'string' ? null : trackOrKind,
        /** @type {any[]} */ replaced: [],
        async replaceTrack(/** @type {any} */ track) {
          sender.track = track;
          sender.replaced.push(track);
        },
      };
      const transceiver = { kind: 'audio', init, sender };
      this.transceivers.push(transceiver);
      return transceiver;
    }

    /** @param {string} label @param {any} options */
    createDataChannel(label, options) {
      const channel = new FakeDataChannel(label, options);
      this.channels.push(channel);
      return channel;
    }

    async createOffer() {
      return { type: 'offer', sdp: 'v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n' };
    }

    /** @param {any} description */
    async setLocalDescription(description) {
      this.iceGatheringState = 'gathering';
      this.localDescription = { ...description, sdp: description.sdp };
      if (gather === 'instant') this.finishGathering();
    }

    /** Every candidate is known: they are in the local description from now on. */
    finishGathering() {
      this.localDescription = { ...this.localDescription, sdp: `${this.localDescription.sdp}a=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n` };
      this.iceGatheringState = 'complete';
      this._fire('icegatheringstatechange');
    }

    /** @param {any} description */
    async setRemoteDescription(description) {
      this.remoteDescription = description;
    }

    /** @param {string} name @param {Function} fn */
    addEventListener(name, fn) {
      if (!this._listeners.has(name)) this._listeners.set(name, new Set());
      /** @type {Set<Function>} */ (this._listeners.get(name)).add(fn);
    }

    /** @param {string} name @param {Function} fn */
    removeEventListener(name, fn) {
      this._listeners.get(name)?.delete(fn);
    }

    /** @param {string} name */
    _fire(name) {
      for (const fn of [...(this._listeners.get(name) || [])]) fn({});
    }

    async getStats() {
      return new Map();
    }

    close() {
      this.closed = true;
      this.connectionState = 'closed';
    }

    // -- gateway side --
    get channel() {
      return this.channels[0];
    }

    /** ICE and DTLS are through: the assistant's track arrives and the data channel opens. */
    connect(stream = { id: 'assistant-audio' }) {
      this.connectionState = 'connected';
      if (this.ontrack) this.ontrack({ track: { kind: 'audio' }, streams: [stream] });
      this.channel.open();
    }

    fail() {
      this.connectionState = 'failed';
      if (this.onconnectionstatechange) this.onconnectionstatechange();
    }
  }
  return FakeRTCPeerConnection;
}
