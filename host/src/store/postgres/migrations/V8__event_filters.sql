-- Per-instance event filters: a notification the instance's filter left
-- out is stored settled ('delivered', delivered_at = when it was stored, so
-- it is pruned like a delivered one) with this flag set; the event log shows
-- it as FILTERED. A redelivery clears the flag. Adding a column with a
-- constant default rewrites no rows. The partial index finds the filtered
-- ones for a search by that status (the unsettled index skips them).
ALTER TABLE notifications ADD COLUMN filtered BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX notifications_filtered ON notifications (id) WHERE filtered;
