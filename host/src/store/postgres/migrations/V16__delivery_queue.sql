-- Delivery state in a narrow table of its own. A pending notification
-- has one row here: when it is due (or its lease ends), the lease token
-- of the claim holding it, and its ordering key (a copy of the
-- notification's, which never changes, for the ordered index). The row
-- goes when the notification settles, and comes back when it is
-- redelivered.
--
-- Before, every claim and every outcome rewrote the whole notification
-- row (with its body), and a rewrite that changes an indexed column adds
-- an entry to every index of the table: six per claim and three per
-- outcome, about 40 % of the database's work in a drain. A claim now
-- rewrites a row of a few dozen bytes with three indexes; an outcome
-- deletes it and updates the notification once.
CREATE TABLE delivery_queue (
    notification_id TEXT COLLATE "C" PRIMARY KEY,
    instance_id     BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_token     TEXT,
    order_key       TEXT COLLATE "C"
);
INSERT INTO delivery_queue (notification_id, instance_id, next_attempt_at, lease_token, order_key)
SELECT id, instance_id, next_attempt_at, lease_token, order_key
FROM notifications WHERE status = 'pending';
CREATE INDEX delivery_queue_due ON delivery_queue (instance_id, next_attempt_at);
CREATE INDEX delivery_queue_leased ON delivery_queue (instance_id, next_attempt_at)
    WHERE lease_token IS NOT NULL;
CREATE INDEX delivery_queue_ordered ON delivery_queue (instance_id, order_key, notification_id)
    WHERE order_key IS NOT NULL;
DROP INDEX notifications_due_by_instance;
DROP INDEX notifications_leased;
DROP INDEX notifications_ordered;
ALTER TABLE notifications DROP COLUMN next_attempt_at, DROP COLUMN lease_token;
