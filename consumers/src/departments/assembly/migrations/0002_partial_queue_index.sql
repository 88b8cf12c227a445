-- Only queued orders (status 'paid') are ever looked up in queue order. A partial index holds
-- just them: placing an order writes no index entry, and paying it writes one, where the full
-- index wrote an entry per order and moved it on every status change.
DROP INDEX build_queue_order;
CREATE INDEX build_queue_order ON build_queue (expected_delivery, order_id) WHERE status = 'paid';
