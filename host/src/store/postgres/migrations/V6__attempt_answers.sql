-- What the receiver said: the first bytes of its answer to each attempt
-- (at most `[delivery] response_body_bytes`; empty when it sent none or
-- did not answer). Existing attempts read back with an empty prefix.
ALTER TABLE delivery_attempts ADD COLUMN response_body BYTEA NOT NULL DEFAULT '\x';
