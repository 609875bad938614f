-- Every webhook writes a row of notification_events per event, and its
-- foreign key cost a trigger per row: a lookup and a key-share lock of the
-- notification just inserted, with its WAL record (about 7 % of the
-- database's work per webhook). Every statement that deletes notifications
-- now deletes their events with them, as it does their attempts (V13).
ALTER TABLE notification_events DROP CONSTRAINT notification_events_notification_id_fkey;
