-- The relay records how far it has published as one high-water mark instead of stamping every
-- row: one row write per published chunk instead of two index and one row write per event.
-- Outbox ids commit in id order (SQLite has one writer at a time), so every row at or below the
-- mark has been acknowledged by the broker.
CREATE TABLE relay_progress (
    name              TEXT PRIMARY KEY NOT NULL,
    published_through INTEGER NOT NULL
);
-- Rows stamped after the first unstamped one are published again: duplicates carry the same
-- sequence, and consumers skip them.
INSERT INTO relay_progress (name, published_through)
SELECT 'outbox', COALESCE((SELECT MIN(id) - 1 FROM outbox WHERE published_at IS NULL), (SELECT MAX(id) FROM outbox), 0);
DROP INDEX outbox_unpublished;
ALTER TABLE outbox DROP COLUMN published_at;
