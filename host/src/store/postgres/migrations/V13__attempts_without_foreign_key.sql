-- Recording a delivery's outcome inserts its attempt, and the attempt's
-- foreign key cost a lookup and a key-share lock of the notification per
-- row (a trigger each): about a quarter of the database's work to record a
-- batch of outcomes. Every statement that deletes notifications now
-- deletes their attempts with them (instance deletion first locks the
-- instance's notifications, so no outcome can be written for one of them
-- meanwhile).
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_notification_id_fkey;
