-- Voice cloning (the clone service): a voice whose provider is still cloning it is
-- 'processing'; each voice keeps how much audio it was cloned from and the warnings its
-- samples got. 'pending' and 'deleted' stay allowed for rows written by S1.
ALTER TABLE custom_voices DROP CONSTRAINT custom_voices_status_check;
ALTER TABLE custom_voices ADD CONSTRAINT custom_voices_status_check
    CHECK (status IN ('pending', 'processing', 'ready', 'failed', 'deleted'));
ALTER TABLE custom_voices
    ADD COLUMN total_duration_seconds double precision NOT NULL DEFAULT 0
        CHECK (total_duration_seconds >= 0),
    ADD COLUMN warnings jsonb NOT NULL DEFAULT '[]'::jsonb;
-- A user's voices newest first; the sweep of clones a stopped worker left behind.
CREATE INDEX custom_voices_user_created ON custom_voices (user_id, created_at DESC);
CREATE INDEX custom_voices_processing ON custom_voices (updated_at) WHERE status = 'processing';

-- The converted samples a voice was cloned from, kept only when the clone service runs
-- with CLONE_KEEP_SAMPLES=1 (nothing is kept otherwise); gone with their voice.
CREATE TABLE custom_voice_samples (
    id                bigserial PRIMARY KEY,
    voice_id          uuid NOT NULL REFERENCES custom_voices (id) ON DELETE CASCADE,
    ordinal           integer NOT NULL CHECK (ordinal >= 0),
    filename          text NOT NULL,
    mime_type         text NOT NULL,
    duration_seconds  double precision NOT NULL CHECK (duration_seconds >= 0),
    audio             bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (voice_id, ordinal)
);
