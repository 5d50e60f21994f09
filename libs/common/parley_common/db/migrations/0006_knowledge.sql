-- Knowledge per chatbot (RAG): uploaded documents, their chunks embedded as 384-dimension
-- vectors (all-MiniLM-L6-v2) with an HNSW index for cosine search; the chunks an answer used,
-- on its transcript row; whether a chatbot's sessions retrieve by default.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE knowledge_documents (
    id               uuid PRIMARY KEY,
    user_id          text NOT NULL,
    chatbot_id       text NOT NULL,
    filename         text NOT NULL,
    media_type       text NOT NULL,
    size_bytes       integer NOT NULL CHECK (size_bytes > 0),
    -- The upload as sent, so that a re-index reads it again with the current extractor.
    content          bytea NOT NULL,
    text_chars       integer NOT NULL CHECK (text_chars >= 0),
    chunk_count      integer NOT NULL CHECK (chunk_count >= 0),
    embedding_model  text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    indexed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_documents_chatbot ON knowledge_documents (chatbot_id, created_at);

-- user_id and chatbot_id are copied from the document so the search filters without a join.
CREATE TABLE knowledge_chunks (
    id           bigserial PRIMARY KEY,
    document_id  uuid NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    user_id      text NOT NULL,
    chatbot_id   text NOT NULL,
    ordinal      integer NOT NULL CHECK (ordinal >= 0),
    text         text NOT NULL,
    embedding    vector(384) NOT NULL,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX knowledge_chunks_chatbot ON knowledge_chunks (chatbot_id);
CREATE INDEX knowledge_chunks_embedding ON knowledge_chunks
    USING hnsw (embedding vector_cosine_ops);

-- [{chunk_id, document_id, filename, ordinal, score}, ...] on an assistant row.
ALTER TABLE voice_transcripts ADD COLUMN sources jsonb;
-- NULL: the chatbot does not choose, sessions decide (off unless they ask).
ALTER TABLE voice_configs ADD COLUMN use_rag boolean;
