-- Part of the ledger: every order erased (by its tombstone, or by an event Sales published with
-- the customer's data blanked). A rebuild keeps it, so a replay of an erased order's older
-- events records its mail as dropped, never as pending.
CREATE TABLE erased_orders (
    order_id   TEXT PRIMARY KEY,
    erased_at  BIGINT NOT NULL      -- when the mailer first saw the erasure, ms since the epoch
);

-- Orders erased before this table existed, as far as their stripped mails tell.
INSERT INTO erased_orders (order_id, erased_at)
SELECT order_id, MIN(erased_at) FROM mails WHERE erased_at IS NOT NULL GROUP BY order_id;

-- The run that recorded each mail (a UUID per run), so a run can say what it recorded.
ALTER TABLE mails ADD COLUMN recorded_in TEXT;
