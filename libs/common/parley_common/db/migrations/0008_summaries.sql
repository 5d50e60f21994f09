-- Conversation summaries: when a session ends, the dialogue service asks the session's LLM
-- for a title and a short summary of the stored transcript. The status says where that is:
-- NULL (nothing to summarise yet: no turns), 'pending' (being generated), 'ready' or
-- 'failed' (the model could not give one; the previous summary, if any, is kept).
ALTER TABLE voice_sessions
    ADD COLUMN title                text,
    ADD COLUMN summary              text,
    ADD COLUMN summary_status       text
        CHECK (summary_status IN ('pending', 'ready', 'failed')),
    ADD COLUMN summary_generated_at timestamptz;
