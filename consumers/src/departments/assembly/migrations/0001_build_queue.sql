-- One row per live order. Paid, non-cancelled orders (status 'paid') are in the build queue;
-- the others keep their row so the sequence gate can refuse a stale event that would re-queue
-- a cancelled order.
CREATE TABLE build_queue (
    order_id           TEXT PRIMARY KEY,
    model              TEXT NOT NULL,     -- F, P or H
    batteries          INTEGER NOT NULL,  -- packs the car needs
    expected_delivery  INTEGER NOT NULL,  -- days since 1970-01-01: the queue order
    status             TEXT NOT NULL,     -- placed, paid, cancelled; queued while 'paid'
    sequence           BIGINT NOT NULL,   -- last applied event; older ones are ignored
    updated_at         BIGINT NOT NULL    -- the event's occurred_at, ms since the epoch
);

CREATE INDEX build_queue_order ON build_queue (status, expected_delivery, order_id);
