import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ConversationLog, normalizeConfig } from '../parley-client.js';

const ANGRY = { label: 'angry', scores: { angry: 0.8, frustrated: 0.2 }, valence: -0.8, arousal: 0.7 };

test('a user final keeps its emotion on the log entry; partials and answers have none', () => {
  const log = new ConversationLog();
  log.applyTranscript({ role: 'user', text: 'this still', isFinal: false, turnId: null });
  assert.equal(log.entries[0].emotion, null);
  log.applyTranscript({ role: 'user', text: 'This still does not work.', isFinal: true, turnId: null, emotion: ANGRY });
  assert.deepEqual(log.entries[0].emotion, ANGRY);
  // The dialogue's later event for the same turn (no emotion of its own) keeps it.
  log.applyTranscript({ role: 'user', text: 'This still does not work.', isFinal: true, turnId: 1 });
  assert.deepEqual(log.entries[0].emotion, ANGRY);
  log.applyResponse({ turnId: 1, text: 'Sorry.', done: true });
  assert.equal(log.entries[1].emotion, null);
});

test('detect_emotion is a session option in either spelling', () => {
  assert.deepEqual(normalizeConfig({ detectEmotion: true }), { detect_emotion: true });
  assert.deepEqual(normalizeConfig({ detect_emotion: false }), { detect_emotion: false });
});
