-- A paused delivery is the instance's own flag, which claims read: its
-- notifications keep their due times instead of being parked (due at the
-- largest time) and all rewritten again when delivery resumes, which for a
-- backlog of 40,000 was one statement of 1.6 s and 95 MB of WAL. Those
-- parked before are due again, oldest first.
UPDATE notifications SET next_attempt_at = created_at
WHERE status = 'pending' AND next_attempt_at = 9223372036854775807;
