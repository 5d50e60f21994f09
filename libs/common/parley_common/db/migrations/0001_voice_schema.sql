-- The tables both systems Parley replaces need (S1: sessions, transcripts, custom voices,
-- analytics; S2: sessions, configs, usage, errors), with every column their queries use.

CREATE TABLE voice_sessions (
    id                    uuid PRIMARY KEY,
    user_id               text NOT NULL,
    chatbot_id            text,
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    config                jsonb NOT NULL,
    stt_provider          text NOT NULL,
    llm_provider          text NOT NULL,
    tts_provider          text NOT NULL,
    voice                 text,
    language              text,
    response_style        text NOT NULL,
    interrupt_sensitivity text NOT NULL,
    started_at            timestamptz NOT NULL DEFAULT now(),
    ended_at              timestamptz,
    duration_seconds      double precision,
    total_turns           integer NOT NULL DEFAULT 0,
    interruptions_count   integer NOT NULL DEFAULT 0,
    metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_sessions_user_started ON voice_sessions (user_id, started_at DESC);
CREATE INDEX voice_sessions_active ON voice_sessions (status) WHERE status = 'active';

CREATE TABLE voice_transcripts (
    id           bigserial PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES voice_sessions (id) ON DELETE CASCADE,
    turn_id      integer NOT NULL,
    role         text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    text         text NOT NULL,
    confidence   double precision,
    language     text,
    interrupted  boolean NOT NULL DEFAULT false,
    words        jsonb,
    started_at   timestamptz,
    ended_at     timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, turn_id, role)
);
CREATE INDEX voice_transcripts_session ON voice_transcripts (session_id, turn_id);

CREATE TABLE custom_voices (
    id                uuid PRIMARY KEY,
    user_id           text NOT NULL,
    name              text NOT NULL,
    description       text,
    provider          text NOT NULL,
    provider_voice_id text,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'ready', 'failed', 'deleted')),
    sample_count      integer NOT NULL DEFAULT 0,
    labels            jsonb NOT NULL DEFAULT '{}'::jsonb,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX custom_voices_user ON custom_voices (user_id);

CREATE TABLE voice_analytics (
    id                        bigserial PRIMARY KEY,
    session_id                uuid REFERENCES voice_sessions (id) ON DELETE SET NULL,
    user_id                   text NOT NULL,
    chatbot_id                text,
    stt_provider              text,
    llm_provider              text,
    tts_provider              text,
    duration_seconds          double precision NOT NULL DEFAULT 0,
    total_turns               integer NOT NULL DEFAULT 0,
    interruptions_count       integer NOT NULL DEFAULT 0,
    characters_transcribed    bigint NOT NULL DEFAULT 0,
    characters_synthesized    bigint NOT NULL DEFAULT 0,
    audio_seconds_processed   double precision NOT NULL DEFAULT 0,
    llm_input_tokens          bigint NOT NULL DEFAULT 0,
    llm_output_tokens         bigint NOT NULL DEFAULT 0,
    avg_stt_latency_ms        double precision,
    avg_llm_first_token_ms    double precision,
    avg_tts_first_byte_ms     double precision,
    avg_voice_to_voice_ms     double precision,
    avg_interrupt_latency_ms  double precision,
    avg_confidence            double precision,
    estimated_cost_usd        numeric(12, 6) NOT NULL DEFAULT 0,
    recorded_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id)
);
CREATE INDEX voice_analytics_user_recorded ON voice_analytics (user_id, recorded_at DESC);

CREATE TABLE voice_configs (
    chatbot_id             text PRIMARY KEY,
    user_id                text,
    stt_provider           text,
    tts_provider           text,
    llm_provider           text,
    tts_voice              text,
    tts_speed              double precision NOT NULL DEFAULT 1.0
                           CHECK (tts_speed BETWEEN 0.5 AND 2.0),
    tts_pitch              double precision NOT NULL DEFAULT 0.0
                           CHECK (tts_pitch BETWEEN -2.0 AND 2.0),
    stt_language           text,
    audio_format           text NOT NULL DEFAULT 'webm',
    response_style         text,
    interrupt_sensitivity  text,
    system_prompt          text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE voice_usage (
    id           bigserial PRIMARY KEY,
    session_id   uuid REFERENCES voice_sessions (id) ON DELETE SET NULL,
    user_id      text NOT NULL,
    chatbot_id   text,
    service      text NOT NULL CHECK (service IN ('stt', 'llm', 'tts', 'clone')),
    provider     text NOT NULL,
    quantity     double precision NOT NULL,
    unit         text NOT NULL,
    cost_usd     numeric(12, 6) NOT NULL DEFAULT 0,
    event_id     text UNIQUE,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_usage_user_recorded ON voice_usage (user_id, recorded_at DESC);
CREATE INDEX voice_usage_session ON voice_usage (session_id);

CREATE TABLE voice_errors (
    id           bigserial PRIMARY KEY,
    session_id   uuid REFERENCES voice_sessions (id) ON DELETE SET NULL,
    service      text NOT NULL,
    code         text NOT NULL,
    message      text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    event_id     text UNIQUE,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_errors_occurred ON voice_errors (occurred_at DESC);

CREATE TABLE voice_turn_latency (
    session_id          uuid NOT NULL REFERENCES voice_sessions (id) ON DELETE CASCADE,
    turn_id             integer NOT NULL,
    stt_final_ms        double precision,
    llm_first_token_ms  double precision,
    tts_first_byte_ms   double precision,
    voice_to_voice_ms   double precision,
    interrupt_ms        double precision,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, turn_id)
);
