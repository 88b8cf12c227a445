-- The customer aggregates become views over customer_orders, computed when read: a batch then
-- writes one row per order and nothing else, so no aggregate can drift from the contributions,
-- and two writers never contend for a customer row. Per-customer reads go through the index
-- customer_orders_customer (both engines push a customer_id filter into the views).
DROP TABLE customers;
DROP TABLE customer_spend;

-- One row per customer with at least one live order. Name, email and address come from the
-- most recently changed order: the highest updated_at, then the highest order_id.
CREATE VIEW customers AS
SELECT customer_id, name, email, shipping_address, orders_placed, orders_paid, orders_cancelled,
       last_order_at, updated_at
FROM (SELECT customer_id, name, email, shipping_address,
             COUNT(*) OVER whole AS orders_placed,
             CAST(SUM(CASE WHEN paid_at IS NOT NULL THEN 1 ELSE 0 END) OVER whole AS BIGINT) AS orders_paid,
             CAST(SUM(CASE WHEN cancelled_at IS NOT NULL THEN 1 ELSE 0 END) OVER whole AS BIGINT) AS orders_cancelled,
             MAX(placed_at) OVER whole AS last_order_at,
             updated_at,
             ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY updated_at DESC, order_id DESC) AS recency
      FROM customer_orders
      WINDOW whole AS (PARTITION BY customer_id)) AS ranked
WHERE recency = 1;

-- Lifetime spend per customer and currency: orders paid and not cancelled. One row per currency
-- the customer has spent in, so amounts in different currencies are never added up.
CREATE VIEW customer_spend AS
SELECT customer_id, currency, COUNT(*) AS orders, CAST(SUM(spend_cents) AS BIGINT) AS spend_cents
FROM customer_orders
WHERE spend_cents IS NOT NULL
GROUP BY customer_id, currency;
