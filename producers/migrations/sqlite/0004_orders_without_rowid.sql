-- Keyed by order_id itself: a rowid table with a TEXT primary key keeps a second B-tree for the
-- key, so every upsert searched and wrote two trees.
CREATE TABLE orders_by_id (
    order_id          TEXT PRIMARY KEY NOT NULL,
    sequence          INTEGER NOT NULL,
    status            TEXT NOT NULL,
    customer_id       TEXT NOT NULL,
    customer_name     TEXT NOT NULL,
    email             TEXT NOT NULL,
    shipping_address  TEXT NOT NULL,
    model             TEXT NOT NULL,
    batteries         INTEGER NOT NULL,
    price_cents       INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    expected_delivery INTEGER NOT NULL,
    placed_at         INTEGER NOT NULL,
    paid_at           INTEGER,
    cancelled_at      INTEGER,
    cancel_reason     TEXT,
    erased_at         INTEGER
) WITHOUT ROWID;
INSERT INTO orders_by_id SELECT * FROM orders;
DROP TABLE orders;
ALTER TABLE orders_by_id RENAME TO orders;
