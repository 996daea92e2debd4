-- The sales read model: daily aggregates folded from the orders outbox
-- (OrderPaid, OrderRefunded) by the consumer "analytics.sales", and the
-- per-order ledger that makes the folding exact and repeatable.
--
-- Money is exact: numeric with two places. One order's amounts fit
-- numeric(12,2) (as in the orders service); a day sums many orders, so the
-- daily sums are numeric(16,2): below 10^14 a day, 366 days of them still
-- fit an int64 count of cents in C.

-- What each order added to the aggregates, so that a refund takes back
-- exactly that, and so that an order is folded once even when its event
-- comes twice under different ids. paid_on is NULL while only the refund
-- has been seen (events carry no order between them).
CREATE TABLE sales_orders (
    order_id uuid PRIMARY KEY,
    currency char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    amount numeric(12,2),
    paid_on date,
    refunded_on date,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((paid_on IS NULL) = (currency IS NULL) AND (paid_on IS NULL) = (amount IS NULL))
);

-- The paid lines of an order, one per product (repeated lines merged).
CREATE TABLE sales_order_lines (
    order_id uuid NOT NULL REFERENCES sales_orders ON DELETE CASCADE,
    product_id uuid NOT NULL,
    name text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    revenue numeric(14,2) NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- Per UTC day and currency: orders paid that day (refunded ones included),
-- refunds made that day, and revenue = paid minus refunded that day (may be
-- negative). A refund counts on the day it happened, not on the day of the
-- payment.
CREATE TABLE daily_sales (
    day date NOT NULL,
    currency char(3) NOT NULL,
    order_count integer NOT NULL DEFAULT 0,
    refund_count integer NOT NULL DEFAULT 0,
    revenue numeric(16,2) NOT NULL DEFAULT 0,
    PRIMARY KEY (day, currency)
);

-- Per UTC day, currency and product: units and revenue net of the refunds
-- made that day; name is the product's name in the last order folded.
CREATE TABLE daily_product_sales (
    day date NOT NULL,
    currency char(3) NOT NULL,
    product_id uuid NOT NULL,
    name text NOT NULL,
    quantity bigint NOT NULL DEFAULT 0,
    revenue numeric(16,2) NOT NULL DEFAULT 0,
    PRIMARY KEY (day, currency, product_id)
);
