-- Usage is billed per provider *and model* (whisper-1 and gpt-4o-transcribe, Haiku and
-- Sonnet cost differently), so each usage row says which model did the work.
ALTER TABLE voice_usage ADD COLUMN model text;
