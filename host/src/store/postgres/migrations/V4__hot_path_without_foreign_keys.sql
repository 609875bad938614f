-- Receipts and notifications are written by every webhook. Their foreign
-- keys cost a lookup and a row lock on the instance for every row written,
-- with a multixact when batches overlap, about a third of the database's
-- work per webhook. The writer now locks each instance once per batch
-- (`FOR SHARE`, refusing receipts of a deleted instance as the keys did),
-- and deleting an instance or pruning a receipt deletes what hung on it.
ALTER TABLE receipts DROP CONSTRAINT receipts_instance_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT notifications_instance_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT notifications_receipt_id_fkey;
