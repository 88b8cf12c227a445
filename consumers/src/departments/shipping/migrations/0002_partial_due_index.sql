-- Only due shipments (status 'paid') are ever looked up by week. A partial index holds just
-- them: placing an order writes no index entry, and paying it writes one, where the full index
-- wrote an entry per order and moved it on every status change.
DROP INDEX shipments_due;
CREATE INDEX shipments_due ON shipments (delivery_week) WHERE status = 'paid';
