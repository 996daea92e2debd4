-- The catalog: categories (a tree through parent_id) and products.
-- Stock is not here: it is inventory's (schema "inventory"), keyed by the
-- product id. Products are never deleted, only made inactive, so that
-- orders and reviews that name one keep a product to name.
-- The CHECKs repeat the handlers' validation as the last line of defence.
CREATE TABLE categories (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    parent_id uuid REFERENCES categories,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id)
);

CREATE INDEX categories_parent ON categories (parent_id);

-- price: exact money, two places; the C side holds it as integer cents.
-- search: the full-text document of name and description ('simple': no
-- stemming and no stop words, so any language's words are found as typed).
CREATE TABLE products (
    id uuid PRIMARY KEY,
    sku text NOT NULL UNIQUE CHECK (char_length(sku) BETWEEN 1 AND 64),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    price numeric(12, 2) NOT NULL CHECK (price >= 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    category_id uuid NOT NULL REFERENCES categories,
    image_url text NOT NULL DEFAULT '' CHECK (char_length(image_url) <= 2048),
    is_active boolean NOT NULL DEFAULT true,
    rating_average numeric(2, 1) NOT NULL DEFAULT 0 CHECK (rating_average BETWEEN 0 AND 5),
    rating_count integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    search tsvector GENERATED ALWAYS AS
        (to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(description, ''))) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX products_search ON products USING gin (search);
-- Lists only ever show active products: filters and sort orders.
CREATE INDEX products_category ON products (category_id) WHERE is_active;
CREATE INDEX products_price ON products (price) WHERE is_active;
CREATE INDEX products_name ON products (name) WHERE is_active;
CREATE INDEX products_created ON products (created_at) WHERE is_active;
