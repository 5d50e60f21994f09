-- Idle sessions end (GATEWAY_IDLE_TIMEOUT_S): each gateway writes when a session's client
-- last sent audio or a message, and every gateway's reaper reads it.
ALTER TABLE voice_sessions ADD COLUMN last_activity_at timestamptz NOT NULL DEFAULT now();
UPDATE voice_sessions SET last_activity_at = GREATEST(started_at, updated_at);
CREATE INDEX voice_sessions_idle ON voice_sessions (last_activity_at) WHERE status = 'active';

-- Recordings of each user utterance and assistant reply, written only when the analytics
-- service runs with PARLEY_STORE_AUDIO=1 (nothing is stored otherwise). One row per turn
-- and role; the audio is a complete file (FLAC by default) of duration_seconds.
CREATE TABLE voice_audio (
    id                bigserial PRIMARY KEY,
    session_id        uuid NOT NULL REFERENCES voice_sessions (id) ON DELETE CASCADE,
    turn_id           integer NOT NULL,
    role              text NOT NULL CHECK (role IN ('user', 'assistant')),
    encoding          text NOT NULL,
    mime_type         text NOT NULL,
    sample_rate       integer NOT NULL CHECK (sample_rate > 0),
    duration_seconds  double precision NOT NULL CHECK (duration_seconds >= 0),
    -- An assistant reply cut short by an interruption: the audio synthesised before it.
    interrupted       boolean NOT NULL DEFAULT false,
    audio             bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, turn_id, role)
);
