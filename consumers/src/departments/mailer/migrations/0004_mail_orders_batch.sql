-- The batch that last advanced each order (a random id per batch): the ledger records the mails
-- of exactly the orders the batch's sequence-gated upsert advanced, in the same statement that
-- inserts them, without reading the sequences back first.
ALTER TABLE mail_orders ADD COLUMN batch BIGINT;
