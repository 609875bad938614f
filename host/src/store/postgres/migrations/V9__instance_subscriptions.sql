-- Instances' vendor subscriptions: what an element registered at the vendor
-- for an instance (its inbound URL, and what the element asked to remember
-- of it, e.g. the vendor's callback ids), and where that stands. One row
-- per instance, written once per subscription and gone with the instance.
CREATE TABLE instance_subscriptions (
    instance_id  BIGINT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    status       TEXT   NOT NULL
                 CHECK (status IN ('subscribed', 'failed', 'not_subscribed', 'unsupported')),
    message      TEXT,
    remembered   TEXT,
    callback_url TEXT,
    updated_at   BIGINT NOT NULL
);
