-- saga.sql - pgbench's side of bench/orders: the SQL one order costs the
-- platform from CreateOrder to PAID, statement for statement as the services
-- send it (captured with log_statement = all from one order through
-- pantherad): the reservation, the order, the charge, PAID and the stock
-- committed, the two emails recorded and sent (to the address auth
-- gives), and the sales report's aggregates; each in the transaction the
-- services use, on the same tables and indexes. Left out: what the event
-- log spends per batch of up to 64 events (cursor lock, outbox read and
-- cursor move), and the RPC, protobuf and C in between. One pgbench
-- "transaction" is one whole order: pgbench's tps is orders per second.
--
-- Run against a copy of the platform's database (run.sh makes it with
-- pg_dump), so that no consumer of pantherad sees these rows.
-- Variables: nprod (the products of the catalog to pick from).

\set k random(0, :nprod - 1)
-- CatalogService.BatchGetProducts, inside CreateOrder: the price.
SELECT id AS prod, sku, name, price::text AS price, currency FROM catalog.products WHERE is_active ORDER BY id LIMIT 1 OFFSET :k \gset
SELECT gen_random_uuid() AS oid, gen_random_uuid() AS uid, gen_random_uuid() AS created, gen_random_uuid() AS payment, gen_random_uuid() AS succeeded, gen_random_uuid() AS paidev, gen_random_uuid() AS n1, gen_random_uuid() AS n2, 'OrderCreated:' || gen_random_uuid() AS chargekey, '\x' || repeat('0a2461633966', 28) AS payload \gset

-- InventoryService.Reserve
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('inventory.order:' || :oid, 0));
SELECT status FROM inventory.reservations WHERE order_id = :oid FOR UPDATE;
INSERT INTO inventory.reservations (order_id, status, expires_at) VALUES (:oid, 'HELD', now() + 900 * interval '1 second');
INSERT INTO inventory.reservation_items (order_id, product_id, quantity) VALUES (:oid, :prod, 1);
SELECT product_id, quantity FROM inventory.reservation_items WHERE order_id = :oid ORDER BY product_id;
UPDATE inventory.stock SET available = available - 1, reserved = reserved + 1, updated_at = now() WHERE product_id = :prod AND available >= 1 RETURNING available;
SELECT extract(epoch FROM expires_at)::bigint FROM inventory.reservations WHERE order_id = :oid;
SELECT available, reserved FROM inventory.stock WHERE product_id = :prod;
WITH e AS (INSERT INTO inventory.outbox (id, type, aggregate_id, payload) VALUES (gen_random_uuid(), 'panthera.events.v1.StockChanged', :prod, :payload::bytea) RETURNING 1) SELECT pg_notify('panthera_events', 'inventory') FROM e;
COMMIT;

-- OrderService.CreateOrder: the order, its line and OrderCreated
BEGIN;
INSERT INTO orders.orders (id, user_id, status, subtotal, total_amount, currency, ship_street, ship_city, ship_state, ship_zip, ship_country, payment_method_id) VALUES (:oid, :uid, 'PENDING_PAYMENT', :price::numeric, :price::numeric, :currency, '1 Bench Way', 'Benchville', '', '12345', 'US', 'pm_card_visa');
INSERT INTO orders.order_items (order_id, line, product_id, sku, name, quantity, unit_price, line_total) VALUES (:oid, 1, :prod, :sku, :name, 1, :price::numeric, :price::numeric);
WITH e AS (INSERT INTO orders.outbox (id, type, aggregate_id, payload) VALUES (:created, 'panthera.events.v1.OrderCreated', :oid, :payload::bytea) RETURNING 1) SELECT pg_notify('panthera_events', 'orders') FROM e;
COMMIT;

-- payments.on_order_created: charge and PaymentSucceeded
BEGIN;
SELECT e.id::text, EXISTS (SELECT 1 FROM payments.processed_events p WHERE p.consumer = 'payments.on_order_created' AND p.event_id = e.id), coalesce(a.attempts, 0), coalesce(a.next_attempt_at > now(), false) FROM unnest(ARRAY[:created]::uuid[]) AS e(id) LEFT JOIN payments.event_attempts a ON a.consumer = 'payments.on_order_created' AND a.event_id = e.id;
SELECT pg_advisory_xact_lock(hashtextextended('payments.' || 'charge' || ':' || :chargekey, 0));
SELECT id, order_id, user_id, amount::text, currency, status, failure_reason, refunded_amount::text, provider, provider_ref, (extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM updated_at) * 1000000)::bigint FROM payments.payments WHERE idempotency_key = :chargekey;
INSERT INTO payments.payments (id, order_id, user_id, amount, currency, status, failure_reason, payment_method_id, provider, provider_ref, idempotency_key) VALUES (:payment, :oid, :uid, :price::numeric, :currency, 'SUCCEEDED', '', 'pm_card_visa', 'test', 'ch_test_' || :k, :chargekey) RETURNING id, order_id, user_id, amount::text, currency, status, failure_reason, refunded_amount::text, provider, provider_ref, (extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM updated_at) * 1000000)::bigint;
WITH e AS (INSERT INTO payments.outbox (id, type, aggregate_id, payload) VALUES (:succeeded, 'panthera.events.v1.PaymentSucceeded', :payment, :payload::bytea) RETURNING 1) SELECT pg_notify('panthera_events', 'payments') FROM e;
INSERT INTO payments.processed_events (consumer, event_id) SELECT 'payments.on_order_created', unnest(ARRAY[:created]::uuid[]);
COMMIT;

-- orders.on_payment, first InventoryService.Commit, then PAID and OrderPaid
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('inventory.order:' || :oid, 0));
SELECT status FROM inventory.reservations WHERE order_id = :oid FOR UPDATE;
UPDATE inventory.stock s SET reserved = s.reserved - i.quantity, updated_at = now() FROM inventory.reservation_items i WHERE i.order_id = :oid AND s.product_id = i.product_id;
UPDATE inventory.reservations SET status = 'COMMITTED', updated_at = now() WHERE order_id = :oid;
SELECT extract(epoch FROM expires_at)::bigint FROM inventory.reservations WHERE order_id = :oid;
SELECT product_id, quantity FROM inventory.reservation_items WHERE order_id = :oid ORDER BY product_id;
SELECT available, reserved FROM inventory.stock WHERE product_id = :prod;
WITH e AS (INSERT INTO inventory.outbox (id, type, aggregate_id, payload) VALUES (gen_random_uuid(), 'panthera.events.v1.StockChanged', :prod, :payload::bytea) RETURNING 1) SELECT pg_notify('panthera_events', 'inventory') FROM e;
COMMIT;
BEGIN;
SELECT e.id::text, EXISTS (SELECT 1 FROM orders.processed_events p WHERE p.consumer = 'orders.on_payment' AND p.event_id = e.id), coalesce(a.attempts, 0), coalesce(a.next_attempt_at > now(), false) FROM unnest(ARRAY[:succeeded]::uuid[]) AS e(id) LEFT JOIN orders.event_attempts a ON a.consumer = 'orders.on_payment' AND a.event_id = e.id;
SELECT id, user_id, status, subtotal, total_amount, currency, ship_street, ship_city, ship_state, ship_zip, ship_country, payment_method_id FROM orders.orders WHERE id = :oid;
UPDATE orders.orders SET status = 'PAID', payment_id = coalesce(:payment::uuid, payment_id), updated_at = now() WHERE id = :oid AND status = 'PENDING_PAYMENT';
SELECT order_id, product_id, sku, name, quantity, unit_price, line_total FROM orders.order_items WHERE order_id = ANY(ARRAY[:oid]::uuid[]) ORDER BY order_id, line;
WITH e AS (INSERT INTO orders.outbox (id, type, aggregate_id, payload) VALUES (:paidev, 'panthera.events.v1.OrderPaid', :oid, :payload::bytea) RETURNING 1) SELECT pg_notify('panthera_events', 'orders') FROM e;
INSERT INTO orders.processed_events (consumer, event_id) SELECT 'orders.on_payment', unnest(ARRAY[:succeeded]::uuid[]);
COMMIT;

-- notifications.on_order_event: OrderCreated and OrderPaid recorded and queued
BEGIN;
SELECT e.id::text, EXISTS (SELECT 1 FROM notifications.processed_events p WHERE p.consumer = 'notifications.on_order_event' AND p.event_id = e.id), coalesce(a.attempts, 0), coalesce(a.next_attempt_at > now(), false) FROM unnest(ARRAY[:created, :paidev]::uuid[]) AS e(id) LEFT JOIN notifications.event_attempts a ON a.consumer = 'notifications.on_order_event' AND a.event_id = e.id;
INSERT INTO notifications.notifications (id, user_id, template, subject, body, order_id, event_id) VALUES (:n1, :uid, 'order_placed', 'Your order ' || :oid || ' has been placed', 'Thank you for your order. ' || repeat('x', 200), :oid, :created) ON CONFLICT (event_id) DO NOTHING RETURNING id;
INSERT INTO notifications.deliveries (notification_id) VALUES (:n1);
INSERT INTO notifications.notifications (id, user_id, template, subject, body, order_id, event_id) VALUES (:n2, :uid, 'order_paid', 'Your order ' || :oid || ' is paid', 'We received your payment. ' || repeat('x', 200), :oid, :paidev) ON CONFLICT (event_id) DO NOTHING RETURNING id;
INSERT INTO notifications.deliveries (notification_id) VALUES (:n2);
INSERT INTO notifications.processed_events (consumer, event_id) SELECT 'notifications.on_order_event', unnest(ARRAY[:created, :paidev]::uuid[]);
COMMIT;
-- the delivery thread: claim, ask UserService for the address, mark sent
WITH due AS (SELECT notification_id FROM notifications.deliveries WHERE status = 'PENDING' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 2 FOR UPDATE SKIP LOCKED) UPDATE notifications.deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + 710000 * interval '1 millisecond', updated_at = now() FROM due, notifications.notifications n WHERE d.notification_id = due.notification_id AND n.id = d.notification_id RETURNING d.notification_id, d.attempts, n.user_id, n.subject, n.body;
SELECT id, email, first_name, last_name, array_to_string(roles, ','), status, (extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM updated_at) * 1000000)::bigint FROM auth.users WHERE id = ANY (ARRAY[:uid]::uuid[]);
UPDATE notifications.deliveries SET status = 'SENT', sent_at = now(), last_error = NULL, updated_at = now() WHERE notification_id = :n1 AND attempts = 1 AND status = 'PENDING';
UPDATE notifications.deliveries SET status = 'SENT', sent_at = now(), last_error = NULL, updated_at = now() WHERE notification_id = :n2 AND attempts = 1 AND status = 'PENDING';

-- analytics.sales: OrderPaid into the daily aggregates
BEGIN;
SELECT e.id::text, EXISTS (SELECT 1 FROM analytics.processed_events p WHERE p.consumer = 'analytics.sales' AND p.event_id = e.id), coalesce(a.attempts, 0), coalesce(a.next_attempt_at > now(), false) FROM unnest(ARRAY[:paidev]::uuid[]) AS e(id) LEFT JOIN analytics.event_attempts a ON a.consumer = 'analytics.sales' AND a.event_id = e.id;
INSERT INTO analytics.sales_orders (order_id) VALUES (:oid) ON CONFLICT (order_id) DO NOTHING;
SELECT paid_on IS NOT NULL, refunded_on IS NOT NULL, coalesce(amount::text, '') FROM analytics.sales_orders WHERE order_id = :oid FOR UPDATE;
UPDATE analytics.sales_orders SET paid_on = current_date, currency = :currency, amount = :price::numeric, updated_at = now() WHERE order_id = :oid;
INSERT INTO analytics.sales_order_lines AS l (order_id, product_id, name, quantity, revenue) VALUES (:oid, :prod, :name, 1, :price::numeric) ON CONFLICT (order_id, product_id) DO UPDATE SET quantity = l.quantity + EXCLUDED.quantity, revenue = l.revenue + EXCLUDED.revenue, name = EXCLUDED.name;
INSERT INTO analytics.daily_sales AS d (day, currency, order_count, revenue) SELECT paid_on, currency, 1, amount FROM analytics.sales_orders WHERE order_id = :oid AND paid_on IS NOT NULL ON CONFLICT (day, currency) DO UPDATE SET order_count = d.order_count + 1, revenue = d.revenue + EXCLUDED.revenue;
INSERT INTO analytics.daily_product_sales AS d (day, currency, product_id, name, quantity, revenue) SELECT o.paid_on, o.currency, l.product_id, l.name, l.quantity, l.revenue FROM analytics.sales_order_lines l JOIN analytics.sales_orders o USING (order_id) WHERE o.order_id = :oid AND o.paid_on IS NOT NULL ON CONFLICT (day, currency, product_id) DO UPDATE SET quantity = d.quantity + EXCLUDED.quantity, revenue = d.revenue + EXCLUDED.revenue, name = EXCLUDED.name;
INSERT INTO analytics.processed_events (consumer, event_id) SELECT 'analytics.sales', unnest(ARRAY[:paidev]::uuid[]);
COMMIT;

-- OrderService.GetOrder: the client sees PAID
SELECT status FROM orders.orders WHERE id = :oid;
SELECT order_id, product_id, sku, name, quantity, unit_price, line_total FROM orders.order_items WHERE order_id = ANY(ARRAY[:oid]::uuid[]) ORDER BY order_id, line;
