-- Most notifications end delivered, and each delivery's outcome moved its
-- row into the status index again. Only pending and dead-lettered ones are
-- looked up by status (counts, the event log's filter); delivered ones are
-- listed in id order with a filter, which finds them at once since nearly
-- every row is delivered. A partial index skips the delivered rows, so
-- recording a delivery writes one index entry fewer.
DROP INDEX notifications_by_status;
CREATE INDEX notifications_unsettled ON notifications (status, id) WHERE status <> 'delivered';
