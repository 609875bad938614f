-- The inbound log's requests that left no receipt (rejected, duplicate,
-- responded), their body cut to a bound and their secret headers redacted,
-- and per instance the count of those dropped beyond the log's caps; both
-- gone with the instance. Written off the hot path, so foreign keys stay.
CREATE TABLE inbound_requests (
    id          TEXT COLLATE "C" PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    element_key TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    outcome     TEXT   NOT NULL CHECK (outcome IN ('rejected', 'duplicate', 'responded')),
    status      INTEGER NOT NULL,
    code        TEXT,
    reason      TEXT,
    method      TEXT   NOT NULL,
    path        TEXT   NOT NULL,
    headers     TEXT   NOT NULL,
    body        BYTEA,
    body_bytes  BIGINT,
    receipt_id  TEXT
);
CREATE INDEX inbound_requests_by_instance ON inbound_requests (instance_id, id);
CREATE TABLE inbound_dropped (
    instance_id BIGINT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    dropped     BIGINT NOT NULL,
    last_at     BIGINT NOT NULL
);
