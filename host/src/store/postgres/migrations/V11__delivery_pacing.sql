-- Fair shares and pacing of delivery: claims visit each instance's due
-- notifications in its own index range (replacing the single due index),
-- count what each has under a lease in a small partial index, and keep
-- each paced instance's next theoretical send time (unix microseconds),
-- row-locked by the claims that move it on.
CREATE INDEX notifications_due_by_instance ON notifications (instance_id, next_attempt_at)
    WHERE status = 'pending';
DROP INDEX notifications_due;
CREATE INDEX notifications_leased ON notifications (instance_id, next_attempt_at)
    WHERE lease_token IS NOT NULL;
CREATE TABLE delivery_pacing (
    instance_id  BIGINT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    next_send_us BIGINT NOT NULL
);
