-- The notifications recorded for users, and the queue that delivers them.
--
-- A notification is rendered from one event of the orders outbox and is
-- recorded once per event: event_id is unique, so an event applied again
-- (the log is at-least-once) finds its row and adds nothing.
CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    user_id uuid NOT NULL,
    channel text NOT NULL DEFAULT 'EMAIL' CHECK (channel IN ('EMAIL')),
    template text NOT NULL CHECK (template IN ('order_placed', 'order_paid',
        'order_payment_failed', 'order_cancelled', 'order_shipped', 'order_delivered',
        'order_refunded')),
    subject text NOT NULL,
    body text NOT NULL,
    order_id uuid NOT NULL,
    event_id uuid NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- ListUserNotifications: a user's rows, newest first. Newest is the last
-- recorded: seq, which one consumer hands out in the order of the events,
-- and which a step of the wall clock cannot reorder as created_at could.
CREATE INDEX notifications_by_user ON notifications (user_id, seq DESC);

-- One row per notification to send. PENDING rows are due at
-- next_attempt_at; a worker that claims one pushes next_attempt_at past
-- the time its attempt may take (a lease) and counts the attempt, so a
-- crashed worker's row comes back by itself. SENT and FAILED are final;
-- FAILED keeps the last error.
CREATE TABLE deliveries (
    notification_id uuid PRIMARY KEY REFERENCES notifications ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'PENDING';
