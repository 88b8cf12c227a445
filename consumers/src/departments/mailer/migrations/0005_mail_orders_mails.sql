-- The kinds of mail each order's stored state implies (a bit per kind), and of those the ones
-- its state before the last advancing event did not. The sequence-gated upsert returns the
-- latter for every order it advanced, so the ledger inserts only new mail, with no lookup of
-- each mail's order and no second insert of what an earlier state of the order implied.
-- Rows from before this migration say 0: their next event records all it implies again, which
-- the ledger's primary key turns into nothing for what is there already.
ALTER TABLE mail_orders ADD COLUMN mails BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mail_orders ADD COLUMN new_mails BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mail_orders DROP COLUMN batch;
