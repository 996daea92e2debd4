-- Reviews of products by their buyers: one per user and product.
-- product_id and user_id name rows of other services (catalog, auth): no
-- foreign keys across services; the handlers ask those services instead.
-- author_name is the account's name when the review was written.
CREATE TABLE reviews (
    id uuid PRIMARY KEY,
    product_id uuid NOT NULL,
    user_id uuid NOT NULL,
    author_name text NOT NULL,
    rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    body text NOT NULL DEFAULT '' CHECK (char_length(body) <= 10000),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- one review per user and product; also serves the rating summary
    CONSTRAINT reviews_one_per_user UNIQUE (product_id, user_id)
);

-- A product's reviews, newest first (ListProductReviews).
CREATE INDEX reviews_product_newest ON reviews (product_id, created_at DESC, id DESC);
