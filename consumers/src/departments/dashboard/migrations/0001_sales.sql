-- One row per live order: what the sales statistics group and count. Each event carries the
-- order's full state, so the latest row per order is all the statistics need.
CREATE TABLE sales (
    order_id      TEXT PRIMARY KEY,
    model         TEXT NOT NULL,     -- F, P or H
    currency      TEXT NOT NULL,     -- ISO 4217
    amount_cents  BIGINT NOT NULL,   -- the order's price
    placed_day    TEXT NOT NULL,     -- YYYY-MM-DD of placed_at, UTC
    status        TEXT NOT NULL,     -- placed, paid, cancelled
    paid_at       BIGINT,            -- ms since the epoch; stays set after a cancellation
    cancelled_at  BIGINT,            -- ms since the epoch
    sequence      BIGINT NOT NULL,   -- last applied event; older ones are ignored
    updated_at    BIGINT NOT NULL    -- the event's occurred_at, ms since the epoch
);

CREATE INDEX sales_model ON sales (model);
CREATE INDEX sales_placed_day ON sales (placed_day);
