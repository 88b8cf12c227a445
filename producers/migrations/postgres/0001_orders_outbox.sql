-- The current state of every order. Personal data is blanked (not dropped) on erasure so the
-- business record (model, price, dates) stays for accounting.
CREATE TABLE orders (
    order_id          TEXT PRIMARY KEY NOT NULL,
    sequence          BIGINT NOT NULL,
    status            TEXT NOT NULL,
    customer_id       TEXT NOT NULL,
    customer_name     TEXT NOT NULL,
    email             TEXT NOT NULL,
    shipping_address  TEXT NOT NULL,
    model             TEXT NOT NULL,
    batteries         BIGINT NOT NULL,
    price_cents       BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    expected_delivery BIGINT NOT NULL,
    placed_at         BIGINT NOT NULL,
    paid_at           BIGINT,
    cancelled_at      BIGINT,
    cancel_reason     TEXT,
    erased_at         BIGINT
);
CREATE INDEX orders_by_status ON orders (status, order_id);

-- Events waiting for (or already given to) Kafka, in the order they must be published.
-- Identity: ids are never reused, even after old published rows are pruned.
CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     TEXT NOT NULL,
    sequence     BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      BYTEA,
    created_at   BIGINT NOT NULL,
    published_at BIGINT,
    -- Two writers that changed the same order concurrently collide here, and one rolls back.
    UNIQUE (order_id, sequence)
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- At most one relay publishes at a time; two would race and could leave an older state as the
-- latest record of a key on the compacted topic.
CREATE TABLE relay_lease (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
