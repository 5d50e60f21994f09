// The `token` option: a bearer header on REST, `?token=` on the WebSocket (asked anew at each
// connection), and 4401/4403 as final closes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { ParleyClient, ParleyApi, ParleyError, CLOSE_CODES, withToken } from '../parley-client.js';
import { makeFakeWebSocket, makeFakeFetch, makeClock, sessionView, tick } from '../testing/fakes.js';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';

function setup({ routes = {}, options = {} } = {}) {
  const WS = makeFakeWebSocket();
  const clock = makeClock();
  const fetch = makeFakeFetch({
    'POST /api/v1/sessions': () => ({ status: 201, body: sessionView() }),
    'POST /api/v1/sessions/sess-1/end': () => ({ status: 200, body: sessionView({ status: 'ended' }) }),
    'GET /api/v1/sessions/sess-1': () => ({ status: 200, body: sessionView() }),
    'GET /api/v1/providers': () => ({ body: { stt: ['local'], llm: ['local'], tts: ['local'] } }),
    'GET /api/v1/voices': () => ({ body: { provider: 'local', voices: [] } }),
    ...routes,
  });
  const client = new ParleyClient({
    apiUrl: 'http://gateway.test', fetch, WebSocket: WS, timers: clock, now: clock.now, random: () => 0.5, ...options,
  });
  return { client, WS, clock, fetch };
}

async function connected(opts) {
  const env = setup(opts);
  const started = env.client.start();
  await tick();
  env.WS.last().accept();
  await started;
  return { ...env, ws: env.WS.last() };
}

/** The token a socket was opened with (null without one). */
const tokenOf = (ws) => new URL(ws.url).searchParams.get('token');

/** A token function that gives `tok-1`, `tok-2`, ... and counts its calls. */
function refreshingToken({ async = true } = {}) {
  const source = () => {
    source.calls++;
    const t = `tok-${source.calls}`;
    return async ? Promise.resolve(t) : t;
  };
  source.calls = 0;
  return source;
}

describe('token on REST', () => {
  test('every request carries Authorization: Bearer, replacing one in headers', async () => {
    const { client, fetch } = await connected({ options: { token: TOKEN, headers: { Authorization: 'Bearer stale', 'X-Trace': '1' } } });
    await client.api.listProviders();
    await client.api.listVoices('local');
    await client.api.getSession('sess-1');
    await client.end();
    assert.deepEqual(
      fetch.calls.map((c) => [c.method, c.path]),
      [['POST', '/api/v1/sessions'], ['GET', '/api/v1/providers'], ['GET', '/api/v1/voices'],
        ['GET', '/api/v1/sessions/sess-1'], ['POST', '/api/v1/sessions/sess-1/end']],
    );
    for (const call of fetch.calls) {
      assert.equal(call.headers.Authorization, `Bearer ${TOKEN}`, call.path);
      assert.equal(call.headers['X-Trace'], '1');
    }
  });

  test('without a token no Authorization header is sent and the URL has no token', async () => {
    const { fetch, ws } = await connected();
    assert.equal(fetch.calls[0].headers.Authorization, undefined);
    assert.equal(ws.url, 'ws://gateway.test/api/v1/sessions/sess-1/ws');
  });

  test('a token function is asked before each request; a failing one sends nothing', async () => {
    const token = refreshingToken();
    const fetch = makeFakeFetch({ 'GET /api/v1/providers': () => ({ body: {} }) });
    const api = new ParleyApi({ apiUrl: 'http://g.test', fetch, token });
    await api.listProviders();
    await api.listProviders();
    assert.deepEqual(fetch.calls.map((c) => c.headers.Authorization), ['Bearer tok-1', 'Bearer tok-2']);
    const failing = new ParleyApi({ apiUrl: 'http://g.test', fetch, token: async () => { throw new Error(`refresh failed for ${TOKEN}`); } });
    await assert.rejects(failing.listProviders(), (e) => e instanceof ParleyError && e.code === 'token_unavailable' && !e.message.includes(TOKEN));
    assert.equal(fetch.calls.length, 2, 'no request without its token');
    const wrongType = new ParleyApi({ apiUrl: 'http://g.test', fetch, token: () => /** @type {any} */ ({ secret: TOKEN }) });
    await assert.rejects(wrongType.listProviders(), (e) => e.code === 'config_error' && !e.message.includes(TOKEN));
  });

  test('a 401 becomes a ParleyError with the server code; start() opens no socket', async () => {
    const { client, WS } = setup({
      options: { token: 'expired' },
      routes: {
        'POST /api/v1/sessions': () => ({ status: 401, body: { success: false, error: { code: 'token_expired', message: 'the token has expired', details: [] } } }),
      },
    });
    const errors = [];
    client.on('error', (e) => errors.push(e));
    await assert.rejects(client.start(), (e) => e instanceof ParleyError && e.code === 'token_expired' && e.status === 401);
    assert.deepEqual(errors.map((e) => [e.code, e.status, e.source, e.message]), [['token_expired', 401, 'http', 'the token has expired']]);
    assert.equal(WS.instances.length, 0);
    assert.equal(client.state, 'closed');
  });

  test('without userId the body names no user (the server takes the token\'s)', async () => {
    const { fetch } = await connected({ options: { token: TOKEN } });
    assert.equal('user_id' in fetch.calls[0].body, false);
    const named = await connected({ options: { token: TOKEN, userId: 'alice' } });
    assert.equal(named.fetch.calls[0].body.user_id, 'alice');
  });

  test('endSession({keepalive}) passes keepalive to fetch with the header', async () => {
    const inits = [];
    const fetch = async (url, init) => {
      inits.push(init);
      return { ok: true, status: 200, text: async () => JSON.stringify(sessionView({ status: 'ended' })) };
    };
    await new ParleyApi({ apiUrl: 'http://g.test', fetch, token: TOKEN }).endSession('sess-1', { keepalive: true });
    assert.equal(inits[0].keepalive, true);
    assert.equal(inits[0].headers.Authorization, `Bearer ${TOKEN}`);
  });

  test('a token for the client and an api of its own is refused', () => {
    const api = new ParleyApi({ apiUrl: 'http://g.test', fetch: makeFakeFetch() });
    assert.throws(() => new ParleyClient({ api, token: TOKEN }), (e) => e.code === 'config_error');
  });
});

describe('token on the WebSocket', () => {
  test('withToken encodes and replaces an existing token, keeping other parameters', () => {
    const url = withToken('ws://h/api/v1/sessions/a/ws?token=old&x=1', 'a b+c/=&d');
    const u = new URL(url);
    assert.deepEqual(u.searchParams.getAll('token'), ['a b+c/=&d']);
    assert.equal(u.searchParams.get('x'), '1');
    assert.ok(!url.includes('a b+c/=&d'), url);
    assert.equal(withToken('ws://h/x?y=2', null), 'ws://h/x?y=2');
  });

  test('the socket URL carries the token, the client\'s wsUrl does not', async () => {
    const { client, ws } = await connected({
      options: { token: TOKEN },
      routes: { 'POST /api/v1/sessions': () => ({ status: 201, body: sessionView({ ws_url: 'ws://gateway.test/api/v1/sessions/sess-1/ws?token=from-server' }) }) },
    });
    assert.equal(tokenOf(ws), TOKEN);
    assert.deepEqual(new URL(ws.url).searchParams.getAll('token'), [TOKEN]);
    assert.ok(!client.wsUrl.includes(TOKEN));
    assert.equal(client.state, 'connected');
  });

  test('each reconnect asks the token function again and uses the refreshed token', async () => {
    const token = refreshingToken();
    const { client, WS, clock, ws } = await connected({ options: { token } });
    // One call for POST /sessions, one for the socket.
    assert.equal(tokenOf(ws), 'tok-2');
    ws.serverClose(1006);
    clock.advance(500);
    await tick();
    assert.equal(WS.instances.length, 2);
    assert.equal(tokenOf(WS.last()), 'tok-3');
    WS.last().serverClose(1011);
    clock.advance(1000);
    await tick();
    assert.equal(tokenOf(WS.last()), 'tok-4');
    WS.last().accept();
    assert.equal(client.state, 'connected');
  });

  test('a token function that answers at once connects in the same tick', async () => {
    const token = refreshingToken({ async: false });
    const { WS, clock, ws } = await connected({ options: { token } });
    ws.serverClose(1006);
    clock.advance(500);
    assert.equal(WS.instances.length, 2, 'no await in between');
    assert.equal(tokenOf(WS.last()), 'tok-3');
  });

  test('a failing token function is reported and retried like a lost connection', async () => {
    let fail = false;
    const { client, WS, clock, ws } = await connected({ options: { token: async () => { if (fail) throw new Error('offline'); return TOKEN; } } });
    const errors = [];
    client.on('error', (e) => errors.push(e));
    fail = true;
    ws.serverClose(1006);
    clock.advance(500);
    await tick();
    assert.equal(WS.instances.length, 1, 'no socket without a token');
    assert.equal(client.state, 'reconnecting');
    assert.deepEqual(errors.map((e) => [e.code, e.fatal]), [['token_unavailable', false]]);
    fail = false;
    clock.advance(1000);
    await tick();
    assert.equal(WS.instances.length, 2);
    WS.last().accept();
    assert.equal(client.state, 'connected');
  });

  test('a token that arrives after disconnect() opens nothing', async () => {
    let release;
    const pending = new Promise((r) => { release = r; });
    let calls = 0;
    const { client, WS, clock, ws } = await connected({ options: { token: () => (++calls <= 2 ? TOKEN : pending) } });
    ws.serverClose(1006);
    clock.advance(500);
    client.disconnect();
    release(TOKEN);
    await tick();
    clock.advance(60000);
    assert.equal(WS.instances.length, 1);
    assert.equal(client.state, 'closed');
  });

  test('a token function that does not answer in time is a failed attempt; its late token opens nothing', async () => {
    let release;
    const late = new Promise((r) => { release = r; });
    let calls = 0;
    const { client, WS, clock, ws } = await connected({
      options: { connectTimeoutMs: 1000, token: () => (++calls === 3 ? late : TOKEN) },
    });
    const states = [];
    client.on('state', (s) => states.push(s));
    ws.serverClose(1006);
    clock.advance(500); // attempt 1 waits for its token
    clock.advance(1000);
    assert.equal(states.at(-1).state, 'reconnecting');
    assert.equal(states.at(-1).attempt, 2);
    release('late-token');
    await tick();
    assert.equal(WS.instances.length, 1, 'the token of the timed-out attempt came too late');
    clock.advance(1000);
    await tick();
    assert.equal(WS.instances.length, 2);
    assert.equal(tokenOf(WS.last()), TOKEN);
    WS.last().accept();
    assert.equal(client.state, 'connected');
  });
});

describe('refused sockets', () => {
  for (const [code, errCode] of [[CLOSE_CODES.UNAUTHENTICATED, 'unauthenticated'], [CLOSE_CODES.FORBIDDEN, 'forbidden']]) {
    test(`${code} is final: one ${errCode} error with the server's reason, no reconnect`, async () => {
      const { client, ws, WS, clock } = await connected({ options: { token: TOKEN } });
      const errors = [];
      const states = [];
      client.on('error', (e) => errors.push(e));
      client.on('state', (s) => states.push(s));
      ws.serverClose(code, 'the token has expired');
      clock.advance(120000);
      assert.equal(WS.instances.length, 1);
      assert.equal(client.state, 'closed');
      assert.equal(errors.length, 1);
      assert.deepEqual(
        { code: errors[0].code, message: errors[0].message, fatal: errors[0].fatal, closeCode: errors[0].closeCode },
        { code: errCode, message: 'the token has expired', fatal: true, closeCode: code },
      );
      assert.deepEqual(states.map((s) => [s.state, s.code, s.error]), [['closed', code, errCode]]);
    });
  }

  test('refused before ready: start() rejects with unauthenticated, a default message without a reason', async () => {
    const { client, WS, clock } = setup();
    const errors = [];
    client.on('error', (e) => errors.push(e));
    const started = client.start();
    await tick();
    WS.last().open();
    WS.last().serverClose(4401, '');
    await assert.rejects(started, (e) => e instanceof ParleyError && e.code === 'unauthenticated');
    clock.advance(60000);
    assert.equal(WS.instances.length, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].message, 'The server needs a valid sign-in token.');
  });

  test('the token is in no event the client emits', async () => {
    const { client, WS, clock } = setup({ options: { token: TOKEN } });
    const seen = [];
    for (const name of ['state', 'ready', 'session', 'error', 'network', 'message', 'ended']) client.on(name, (p) => seen.push(p));
    const started = client.start();
    await tick();
    WS.last().accept();
    await started;
    WS.last().serverClose(1006, 'network');
    clock.advance(500);
    WS.last().serverClose(4401, 'the token has expired');
    assert.ok(seen.length > 5);
    assert.ok(!JSON.stringify(seen).includes(TOKEN));
  });
});
