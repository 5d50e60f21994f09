-- The tone of a user's turn when the session detects emotion: the final transcript's
-- Emotion (label, scores, valence, arousal) as JSON; NULL when it was not detected.
ALTER TABLE voice_transcripts ADD COLUMN emotion jsonb;
