-- Payments: one row per attempt to pay an order, and the Idempotency-Key
-- replies of CreatePayment. No card data lives here: only the provider's
-- payment method id (a token such as "pm_card_visa") and the provider's
-- reference of the charge. The CHECKs repeat the handlers' validation as the
-- last line of defence.
--
-- idempotency_key: the key the charge was made under, also given to the
-- provider, so a repeated charge (Charge retried, OrderCreated delivered
-- twice) finds the first payment instead of charging again.
CREATE TABLE payments (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    user_id uuid NOT NULL,
    amount numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'REFUNDED')),
    failure_reason text NOT NULL DEFAULT ''
        CHECK (failure_reason IN ('', 'card_declined', 'insufficient_funds', 'invalid_payment_method')),
    refunded_amount numeric(12, 2) NOT NULL DEFAULT 0
        CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    payment_method_id text NOT NULL CHECK (char_length(payment_method_id) <= 255),
    provider text NOT NULL,
    provider_ref text NOT NULL DEFAULT '',
    idempotency_key text NOT NULL UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'FAILED') = (failure_reason <> ''))
);

CREATE INDEX payments_order ON payments (order_id, created_at);
CREATE INDEX payments_user ON payments (user_id, created_at);

-- CreatePayment's Idempotency-Key: the payment the first request with this
-- key from this user created. A key older than 24 hours no longer replays
-- and is replaced by the next request that uses it.
CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL,
    key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    payment_id uuid NOT NULL REFERENCES payments,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
