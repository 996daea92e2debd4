-- SKIPPED: a final state of the delivery queue for a notification that is
-- not to be sent at all (its user's account is DEACTIVATED when its turn
-- comes); last_error says why. The notification itself stays recorded.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('PENDING', 'SENT', 'FAILED', 'SKIPPED'));
