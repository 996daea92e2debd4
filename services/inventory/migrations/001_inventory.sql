-- Stock on hand per product, and reservations held for orders.
-- available: units that can be reserved now; reserved: units held by
-- reservations not yet committed. Neither may go below zero: the CHECKs are
-- the last line of defence behind the conditional UPDATEs of store.c.
CREATE TABLE stock (
    product_id uuid PRIMARY KEY,
    available integer NOT NULL CHECK (available >= 0),
    reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reservations (
    order_id uuid PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('HELD', 'COMMITTED', 'RELEASED', 'RESTOCKED')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reservation_items (
    order_id uuid NOT NULL REFERENCES reservations ON DELETE CASCADE,
    product_id uuid NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

-- The sweeper looks for held reservations past their time.
CREATE INDEX reservations_held_expiry ON reservations (expires_at) WHERE status = 'HELD';
