-- Orders and their lines, priced when the order was created. Status moves
-- as proto/panthera/orders/v1/orders.proto draws it; each change is written
-- with its event in the same transaction (the outbox, created by events.c).
CREATE TABLE orders (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'PAYMENT_FAILED',
                                           'CANCELLED', 'SHIPPED', 'DELIVERED', 'REFUNDED')),
    subtotal numeric(12, 2) NOT NULL CHECK (subtotal >= 0),
    total_amount numeric(12, 2) NOT NULL CHECK (total_amount >= 0),
    currency text NOT NULL,
    ship_street text NOT NULL,
    ship_city text NOT NULL,
    ship_state text NOT NULL DEFAULT '',
    ship_zip text NOT NULL,
    ship_country text NOT NULL,
    payment_method_id text NOT NULL,
    payment_id uuid,
    carrier text,
    tracking_number text,
    shipped_at timestamptz,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ListUserOrders: a user's orders, newest first.
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id);

CREATE TABLE order_items (
    order_id uuid NOT NULL REFERENCES orders ON DELETE CASCADE,
    line integer NOT NULL,
    product_id uuid NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    line_total numeric(12, 2) NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (order_id, line)
);

-- HasPurchased: the orders holding a product.
CREATE INDEX order_items_by_product ON order_items (product_id);

-- Idempotency-Key of CreateOrder: the order a (user, key) made, for 24
-- hours. The row is taken before the order exists (order_id is decided
-- then), so two requests with one key never both create.
CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL,
    key text NOT NULL,
    order_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
