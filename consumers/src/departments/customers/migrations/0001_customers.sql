-- What each live order contributes to its customer, rewritten from the order's latest state
-- behind the sequence gate. The customer tables below are aggregates of these rows, recomputed
-- for every customer a batch touches, so they are exact after any replay.
CREATE TABLE customer_orders (
    order_id          TEXT PRIMARY KEY,
    customer_id       TEXT NOT NULL,
    name              TEXT NOT NULL,     -- personal data as this order states it; deleted with
    email             TEXT NOT NULL,     -- the order when it is erased
    shipping_address  TEXT NOT NULL,
    currency          TEXT NOT NULL,     -- ISO 4217
    amount_cents      BIGINT NOT NULL,   -- the order's price
    placed_at         BIGINT NOT NULL,   -- ms since the epoch
    paid_at           BIGINT,            -- ms since the epoch; stays set after a cancellation
    cancelled_at      BIGINT,            -- ms since the epoch
    spend_cents       BIGINT,            -- amount_cents if paid and not cancelled, else NULL
    sequence          BIGINT NOT NULL,   -- last applied event; older ones are ignored
    updated_at        BIGINT NOT NULL    -- the event's occurred_at, ms since the epoch
);

CREATE INDEX customer_orders_customer ON customer_orders (customer_id);

-- One row per customer with at least one live order; gone with their last order.
CREATE TABLE customers (
    customer_id       TEXT PRIMARY KEY,
    name              TEXT NOT NULL,     -- from the customer's most recently changed order:
    email             TEXT NOT NULL,     -- the highest updated_at, then the highest order_id
    shipping_address  TEXT NOT NULL,
    orders_placed     BIGINT NOT NULL,   -- live orders, whatever their status
    orders_paid       BIGINT NOT NULL,   -- paid, including those cancelled afterwards
    orders_cancelled  BIGINT NOT NULL,   -- cancelled, before or after payment
    last_order_at     BIGINT NOT NULL,   -- the latest placed_at, ms since the epoch
    updated_at        BIGINT NOT NULL    -- the latest updated_at of the customer's orders
);

-- Lifetime spend per customer and currency: orders paid and not cancelled. One row per
-- currency the customer has spent in, so amounts in different currencies are never added up.
CREATE TABLE customer_spend (
    customer_id       TEXT NOT NULL,
    currency          TEXT NOT NULL,     -- ISO 4217
    orders            BIGINT NOT NULL,   -- orders paid and not cancelled, in this currency
    spend_cents       BIGINT NOT NULL,   -- the sum of their prices
    PRIMARY KEY (customer_id, currency)
);
