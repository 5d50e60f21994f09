-- Function calling by voice: the tools a chatbot's model may call (user-defined HTTP webhooks
-- and the built-ins it enables), and each call made during a session, beside its transcript.
CREATE TABLE chatbot_tools (
    id             uuid PRIMARY KEY,
    chatbot_id     text NOT NULL,
    user_id        text,
    name           text NOT NULL CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    kind           text NOT NULL CHECK (kind IN ('webhook', 'builtin')),
    description    text NOT NULL DEFAULT '',
    parameters     jsonb NOT NULL DEFAULT '{"type": "object", "properties": {}}'::jsonb,
    url            text,
    timeout_s      double precision NOT NULL DEFAULT 5 CHECK (timeout_s > 0 AND timeout_s <= 30),
    -- Sent as a request header to the webhook; never returned by the API, logged or prompted.
    secret_header  text,
    secret_value   text,
    timezone       text,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chatbot_id, name),
    CHECK (kind <> 'webhook' OR url IS NOT NULL)
);

CREATE TABLE voice_tool_calls (
    id           bigserial PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES voice_sessions (id) ON DELETE CASCADE,
    turn_id      integer NOT NULL,
    call_id      text NOT NULL,
    name         text NOT NULL,
    arguments    jsonb,
    status       text NOT NULL CHECK (status IN ('ok', 'error', 'timeout', 'refused')),
    -- What the model was given back (cut to a few kilobytes).
    result       text NOT NULL,
    duration_ms  double precision NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_tool_calls_session ON voice_tool_calls (session_id, turn_id);
