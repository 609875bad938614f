-- Searching the event log: what each notification's events are about, one
-- row per event, indexed for the searches by object id and object type
-- (see store/search.rs). The key to the notification costs no contention:
-- each notification row is referenced only by the transaction writing it,
-- and deleting a notification (pruning, deleting its instance) deletes its
-- rows here. Notifications stored before carry none, so searches by event
-- fields do not find them.
CREATE TABLE notification_events (
    notification_id TEXT COLLATE "C" NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    object_type     TEXT COLLATE "C" NOT NULL,
    object_id       TEXT COLLATE "C" NOT NULL,
    event_type      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX notification_events_by_notification ON notification_events (notification_id);
CREATE INDEX notification_events_by_object ON notification_events (object_id, notification_id);
CREATE INDEX notification_events_by_type ON notification_events (object_type, notification_id);
