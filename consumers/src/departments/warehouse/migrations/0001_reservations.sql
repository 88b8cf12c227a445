-- One row per live order: the batteries the warehouse holds for it.
CREATE TABLE reservations (
    order_id            TEXT PRIMARY KEY,
    model               TEXT NOT NULL,     -- F, P or H
    status              TEXT NOT NULL,     -- placed, paid, cancelled
    batteries           INTEGER NOT NULL,  -- packs the car needs
    batteries_reserved  INTEGER NOT NULL,  -- 0 once the order is cancelled: released
    sequence            BIGINT NOT NULL,   -- last applied event; older ones are ignored
    updated_at          BIGINT NOT NULL    -- the event's occurred_at, ms since the epoch
);

CREATE INDEX reservations_model ON reservations (model);
