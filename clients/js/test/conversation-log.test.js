import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ConversationLog, ParleyClient } from '../parley-client.js';

const view = (log) => log.entries.map((e) => ({ role: e.role, text: e.text, final: e.final, confidence: e.confidence, interrupted: e.interrupted }));

test('user partials are replaced in place and the final carries its confidence', () => {
  const log = new ConversationLog();
  log.applyTranscript({ role: 'user', text: 'what is', isFinal: false, turnId: null });
  log.applyTranscript({ role: 'user', text: 'what is the time', isFinal: false, turnId: null });
  assert.equal(log.entries.length, 1);
  assert.equal(log.entries[0].final, false);
  log.applyTranscript({ role: 'user', text: 'What is the time?', isFinal: true, confidence: 0.91, turnId: 1 });
  assert.deepEqual(view(log), [{ role: 'user', text: 'What is the time?', final: true, confidence: 0.91, interrupted: false }]);
  // The next utterance opens a new entry.
  log.applyTranscript({ role: 'user', text: 'and', isFinal: false, turnId: null });
  assert.equal(log.entries.length, 2);
});

test('assistant answers accumulate response deltas; done carries the full text', () => {
  const log = new ConversationLog();
  log.applyResponse({ turnId: 1, text: 'It is', done: false });
  log.applyResponse({ turnId: 1, text: ' noon.', done: false });
  assert.equal(log.entries[0].text, 'It is noon.');
  assert.equal(log.entries[0].final, false);
  log.applyResponse({ turnId: 1, text: 'It is noon.', done: true });
  assert.equal(log.entries[0].text, 'It is noon.');
  assert.equal(log.entries[0].final, true);
  // Cumulative streams (each event = text so far) are recognised too.
  log.applyResponse({ turnId: 2, text: 'Sure', done: false });
  log.applyResponse({ turnId: 2, text: 'Sure, here', done: false });
  assert.equal(log.entries[1].text, 'Sure, here');
});

test('interrupted answers are marked', () => {
  const log = new ConversationLog();
  log.applyResponse({ turnId: 4, text: 'Let me tell you a long story', done: false });
  log.applyInterrupted({ turnId: 4, heardText: 'Let me tell' });
  assert.equal(log.entries[0].interrupted, true);
  assert.equal(log.entries[0].heardText, 'Let me tell');
  // An assistant transcript flagged interrupted marks the entry too.
  log.applyTranscript({ role: 'assistant', text: 'Other answer', isFinal: true, turnId: 5, interrupted: true });
  assert.equal(log.entries[1].interrupted, true);
});

test('a typed message is shown at once and the server echo is not duplicated', () => {
  const log = new ConversationLog();
  log.addTyped('Hello there');
  log.applyTranscript({ role: 'user', text: 'Hello there', isFinal: true, confidence: 1, turnId: 7 });
  assert.equal(log.entries.length, 1);
  assert.equal(log.entries[0].turnId, 7);
  assert.equal(log.entries[0].typed, true);
});

test('an empty final drops the partial placeholder', () => {
  const log = new ConversationLog();
  log.applyTranscript({ role: 'user', text: 'uh', isFinal: false });
  log.applyTranscript({ role: 'user', text: '', isFinal: true, turnId: 2 });
  assert.equal(log.entries.length, 0);
});

test('attach() follows a client and emits change', () => {
  const client = new ParleyClient({ apiUrl: 'http://x.test', fetch: async () => ({}), WebSocket: function () {} });
  const log = new ConversationLog();
  let changes = 0;
  log.on('change', () => changes++);
  const detach = log.attach(client);
  client.handleMessage({ type: 'transcript', data: { role: 'user', text: 'hi', is_final: true, partial: false, confidence: 0.8, turn_id: 1 } });
  client.handleMessage({ type: 'response', data: { turn_id: 1, text: 'Hello!', done: true } });
  client.handleMessage({ type: 'interrupted', data: { turn_id: 1 } });
  assert.deepEqual(view(log), [
    { role: 'user', text: 'hi', final: true, confidence: 0.8, interrupted: false },
    { role: 'assistant', text: 'Hello!', final: true, confidence: null, interrupted: true },
  ]);
  assert.equal(changes, 3);
  detach();
  client.handleMessage({ type: 'response', data: { turn_id: 2, text: 'x', done: true } });
  assert.equal(log.entries.length, 2);
});
