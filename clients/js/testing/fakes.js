// Test doubles: a scriptable WebSocket, a recording fetch and a manual clock.

/** A WebSocket class whose instances the test drives from the "server" side. */
export function makeFakeWebSocket() {
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    /** @type {FakeWebSocket[]} */
    static instances = [];

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.binaryType = 'blob';
      this.bufferedAmount = 0;
      /** @type {any[]} */
      this.sent = [];
      this.closedWith = null;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      FakeWebSocket.instances.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
      this.sent.push(data);
    }

    close(code = 1000, reason = '') {
      this.closedWith = { code, reason };
      this.readyState = 3;
    }

    // -- server side --
    open() {
      this.readyState = 1;
      this.onopen && this.onopen({});
    }

    serverSend(obj) {
      this.onmessage && this.onmessage({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
    }

    serverBinary(buf) {
      this.onmessage && this.onmessage({ data: buf });
    }

    serverClose(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose && this.onclose({ code, reason, wasClean: code === 1000 });
    }

    /** Open and say ready, as the gateway does. */
    accept(sessionId = 'sess-1', outputRate = 24000) {
      this.open();
      this.serverSend({
        type: 'ready',
        data: {
          session_id: sessionId,
          config: { tts_provider: 'local', output_sample_rate: outputRate },
          input_sample_rate: 16000,
          output_sample_rate: outputRate,
        },
      });
    }

    json() {
      return this.sent.filter((s) => typeof s === 'string').map((s) => JSON.parse(s));
    }

    binary() {
      return this.sent.filter((s) => typeof s !== 'string');
    }

    static last() {
      return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    }
  }
  return FakeWebSocket;
}

/**
 * A WebSocket class that behaves like the gateway for its sessions: each connection is
 * accepted `delayMs` (on `clock`) after it is made, accepting it closes the previous open
 * connection to the same URL with 4409, as the gateway does when a session connects again,
 * and pings are answered.
 */
export function makeFakeGateway(clock, delayMs = 1) {
  const Base = makeFakeWebSocket();
  class GatewaySocket extends Base {
    constructor(url) {
      super(url);
      clock.setTimeout(() => {
        if (this.readyState !== 0) return; // the client gave up on it meanwhile
        for (const other of Base.instances) {
          if (other !== this && other.url === this.url && other.readyState === 1) {
            other.serverClose(4409, 'replaced by a newer connection');
          }
        }
        this.accept();
      }, delayMs);
    }

    send(data) {
      super.send(data);
      const msg = typeof data === 'string' ? JSON.parse(data) : null;
      if (msg && msg.type === 'ping') this.serverSend({ type: 'pong', data: { ts: msg.ts, server_ts: 0 } });
    }
  }
  return GatewaySocket;
}

/**
 * fetch that answers from `routes`: {"POST /api/v1/sessions": (req) => ({status, body})}.
 * Records every call in `.calls` as {url, method, headers, body}.
 */
export function makeFakeFetch(routes = {}) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const method = (init.method || 'GET').toUpperCase();
    const u = new URL(url);
    const key = `${method} ${u.pathname}`;
    const body = init.body ? JSON.parse(init.body) : undefined;
    const req = { url, method, headers: init.headers || {}, body, path: u.pathname, query: u.searchParams };
    calls.push(req);
    const handler = routes[key];
    if (!handler) {
      return response(404, { success: false, error: { code: 'not_found', message: `No route ${key}`, details: [] } });
    }
    const out = await handler(req);
    if (out instanceof Error) throw out;
    return response(out.status ?? 200, out.body, out.raw);
  };
  fetch.calls = calls;
  return fetch;
}

function response(status, body, raw) {
  const text = raw !== undefined ? raw : body === undefined ? '' : JSON.stringify(body);
  return {
    ok: status >= 200 && status < 300,
    status,
    async text() {
      return text;
    },
    async json() {
      return JSON.parse(text);
    },
  };
}

/** A session view as the gateway returns it. */
export function sessionView(overrides = {}) {
  return {
    id: 'sess-1',
    status: 'active',
    user_id: 'user-123',
    chatbot_id: null,
    config: {
      stt_provider: 'local', llm_provider: 'local', tts_provider: 'local', voice: null, language: 'en',
      response_style: 'conversational', interrupt_sensitivity: 'medium', system_prompt: null, output_sample_rate: 24000,
    },
    ws_url: 'ws://gateway.test/api/v1/sessions/sess-1/ws',
    started_at: '2025-01-01T00:00:00Z',
    ended_at: null,
    duration_seconds: null,
    total_turns: 0,
    interruptions_count: 0,
    ...overrides,
  };
}

/** Manual clock with timers; `advance(ms)` fires what falls due, in order. */
export function makeClock(start = 1000) {
  let now = start;
  let seq = 0;
  /** @type {Map<number, {at: number, fn: Function, every: number|null}>} */
  const timers = new Map();
  const clock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn, every: null });
      return id;
    },
    setInterval: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn, every: ms });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    clearInterval: (id) => timers.delete(id),
    pending: () => timers.size,
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let nextId = null;
        let next = null;
        for (const [id, t] of timers) {
          if (t.at <= end && (!next || t.at < next.at)) {
            next = t;
            nextId = id;
          }
        }
        if (!next) break;
        now = next.at;
        if (next.every) next.at += next.every;
        else timers.delete(nextId);
        next.fn();
      }
      now = end;
    },
  };
  return clock;
}

/** Collect the payloads of events `names` emitted by `emitter`. */
export function record(emitter, names) {
  const seen = [];
  for (const n of names) emitter.on(n, (p) => seen.push([n, p]));
  return seen;
}

/** A playback sink that records what the client asks of it. */
export function makeFakePlayer() {
  return {
    pushed: [],
    flushes: [],
    turns: [],
    ended: [],
    rate: null,
    push(pcm, rate, turnId) {
      this.pushed.push({ bytes: pcm.byteLength, rate, turnId });
    },
    flush(reason) {
      this.flushes.push(reason);
    },
    startTurn(turnId, rate) {
      this.turns.push({ turnId, rate });
    },
    endTurn(turnId) {
      this.ended.push(turnId);
    },
    setSampleRate(rate) {
      this.rate = rate;
    },
  };
}

export const tick = () => new Promise((r) => setImmediate(r));
