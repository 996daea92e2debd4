-- getproduct.sql - everything one uncached GET /v1/products/{id} sends to
-- PostgreSQL, captured with log_statement = all: the catalog's SELECT
-- (product.sql), then InventoryService.GetStock's, which the catalog calls
-- for the product's stock; both are reads run without BEGIN/COMMIT
-- (DB_TX_READ). In pantherad the two run on two services' connections;
-- here on one, one after the other.
-- Variables: id (the product), active (t).
SELECT p.id, p.sku, p.name, p.description, p.price::text, p.currency, p.category_id, p.image_url, p.is_active, p.rating_average::text, p.rating_count, floor(extract(epoch FROM p.created_at))::bigint, ((extract(epoch FROM p.created_at) * 1000000)::bigint % 1000000), floor(extract(epoch FROM p.updated_at))::bigint, ((extract(epoch FROM p.updated_at) * 1000000)::bigint % 1000000) FROM catalog.products p WHERE p.id = :id AND (p.is_active OR NOT :active::boolean);
SELECT available, reserved FROM inventory.stock WHERE product_id = :id;
