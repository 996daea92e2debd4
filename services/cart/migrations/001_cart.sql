-- Shopping carts: one per user, its lines, and the orders already taken
-- out of it. No price is stored here: a cart is priced from the catalog on
-- every read, so a line is only a product and a number of units.
-- The CHECKs repeat the handlers' limits as the last line of defence.

-- A cart exists once it was first changed; updated_at is when it last was.
CREATE TABLE carts (
    user_id uuid PRIMARY KEY,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- position: the order lines were first added in (adding units to a line
-- keeps its place; a line removed and added again goes last).
CREATE TABLE cart_lines (
    user_id uuid NOT NULL REFERENCES carts ON DELETE CASCADE,
    product_id uuid NOT NULL,
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    position bigint GENERATED ALWAYS AS IDENTITY,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);

CREATE INDEX cart_lines_by_position ON cart_lines (user_id, position);

-- Orders whose quantities CompleteCheckout removed: a repeated call with
-- the same order id finds its row and changes nothing.
CREATE TABLE checkouts (
    order_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
