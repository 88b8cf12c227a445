-- The only queries by month read every invoice (revenue per month and currency), which a scan
-- does as well without them, and keeping them cost every insert two index entries and every
-- update that sets a month a delete and a re-insert of each.
DROP INDEX invoices_invoice_month;
DROP INDEX invoices_credit_month;
