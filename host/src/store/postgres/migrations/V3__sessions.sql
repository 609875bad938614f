-- Console sessions, shared by every replica: the SHA-256 of each token,
-- when it was opened and last used (unix milliseconds).
CREATE TABLE console_sessions (
    digest     BYTEA  PRIMARY KEY,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_created ON console_sessions (created_at);
