-- product.sql - pgbench's side of GET /v1/products/{id} in bench/gateway:
-- the primary-key SELECT that CatalogService.GetProduct runs
-- (catalog_store_get_product in services/catalog/store.c), statement as the
-- catalog sends it (captured with log_statement = all), schema-qualified.
-- Variables: id (the product), active (t, as GetProduct passes).
SELECT p.id, p.sku, p.name, p.description, p.price::text, p.currency, p.category_id, p.image_url, p.is_active, p.rating_average::text, p.rating_count, floor(extract(epoch FROM p.created_at))::bigint, ((extract(epoch FROM p.created_at) * 1000000)::bigint % 1000000), floor(extract(epoch FROM p.updated_at))::bigint, ((extract(epoch FROM p.updated_at) * 1000000)::bigint % 1000000) FROM catalog.products p WHERE p.id = :id AND (p.is_active OR NOT :active::boolean);
