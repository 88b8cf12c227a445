-- One row per live order, with where and to whom it goes. Paid, non-cancelled orders (status
-- 'paid') are due to ship; the others keep their row so the sequence gate can refuse a stale
-- event that would make a cancelled order due again.
CREATE TABLE shipments (
    order_id           TEXT PRIMARY KEY,
    customer_name      TEXT NOT NULL,
    shipping_address   TEXT NOT NULL,     -- the latest one: amendments update it
    model              TEXT NOT NULL,     -- F, P or H
    expected_delivery  INTEGER NOT NULL,  -- days since 1970-01-01
    delivery_week      TEXT NOT NULL,     -- ISO week of expected_delivery, e.g. 2026-W14
    status             TEXT NOT NULL,     -- placed, paid, cancelled; due while 'paid'
    sequence           BIGINT NOT NULL,   -- last applied event; older ones are ignored
    updated_at         BIGINT NOT NULL    -- the event's occurred_at, ms since the epoch
);

CREATE INDEX shipments_due ON shipments (status, delivery_week);
