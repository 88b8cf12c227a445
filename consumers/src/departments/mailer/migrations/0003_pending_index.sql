-- Only pending mail is ever looked up by status (the sender's queue, in this order), and it is a
-- handful of rows, while history is nearly all of the ledger: a partial index holds just the
-- queue, so recording history or marking a mail sent no longer writes an index entry per mail.
DROP INDEX mails_by_status;
CREATE INDEX mails_pending ON mails (created_at, happened_at, order_id, kind) WHERE status = 'pending';
