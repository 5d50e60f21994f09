// The tone of a user's spoken turn (sessions with detect_emotion), shown beside their words.

/**
 * A badge naming the turn's tone; its title lists every label's score.
 * @param {import('./lib/parley-client.js').Emotion} emotion
 * @returns {HTMLSpanElement}
 */
export function emotionBadge(emotion) {
  const b = document.createElement('span');
  b.className = 'badge';
  b.dataset.testid = 'emotion';
  b.dataset.emotion = emotion.label;
  b.textContent = emotion.label;
  // Words, not emoji: a system without an emoji font would show empty boxes.
  const scores = Object.entries(emotion.scores || {})
    .sort(([, a], [, b2]) => b2 - a)
    .map(([name, p]) => `${name} ${Math.round(p * 100)}%`)
    .join(', ');
  b.title = `Tone of voice: ${scores}`;
  b.setAttribute('aria-label', `sounded ${emotion.label}`);
  return b;
}
