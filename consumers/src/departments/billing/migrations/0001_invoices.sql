-- One row per paid order: its invoice and, once the order is cancelled, its credit note for
-- the same amount. Orders never paid have no row: paid_at stays set on every later event, so
-- no stale event can turn an invoice back into nothing.
CREATE TABLE invoices (
    order_id       TEXT PRIMARY KEY,
    currency       TEXT NOT NULL,     -- ISO 4217
    amount_cents   BIGINT NOT NULL,   -- the order's price; the credit note returns the same
    invoiced_at    BIGINT NOT NULL,   -- paid_at, ms since the epoch
    invoice_month  TEXT NOT NULL,     -- YYYY-MM of invoiced_at, UTC
    credited_at    BIGINT,            -- cancelled_at, ms since the epoch; NULL: no credit note
    credit_month   TEXT,              -- YYYY-MM of credited_at, UTC
    sequence       BIGINT NOT NULL,   -- last applied event; older ones are ignored
    updated_at     BIGINT NOT NULL    -- the event's occurred_at, ms since the epoch
);

CREATE INDEX invoices_invoice_month ON invoices (invoice_month);
CREATE INDEX invoices_credit_month ON invoices (credit_month);
