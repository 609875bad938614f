-- Ordered delivery: an ordered notification's key (the object it is
-- about); of the unsettled ones with the same key and instance one is due
-- or in flight, the others wait (next_attempt_at = i64::MAX - 1). The
-- partial index holds only the unsettled ordered ones, so finding a key's
-- head or next stays small whatever the log's size. Adding a nullable
-- column rewrites no rows.
ALTER TABLE notifications ADD COLUMN order_key TEXT COLLATE "C";
CREATE INDEX notifications_ordered ON notifications (instance_id, order_key, id)
    WHERE status = 'pending' AND order_key IS NOT NULL;
