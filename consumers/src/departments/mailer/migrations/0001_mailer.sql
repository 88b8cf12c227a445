-- The projection: one row per live order, so the sequence gate applies. Rebuildable from the
-- log; a projection reset may empty it.
CREATE TABLE mail_orders (
    order_id    TEXT PRIMARY KEY,
    status      TEXT NOT NULL,       -- placed, paid, cancelled
    sequence    BIGINT NOT NULL,     -- last applied event; older ones decide nothing
    updated_at  BIGINT NOT NULL      -- the event's occurred_at, ms since the epoch
);

-- The ledger: every mail the mailer ever decided on, at most one per order and kind. It is the
-- memory of side effects, not a projection: a reset or rebuild must keep it.
CREATE TABLE mails (
    order_id       TEXT NOT NULL,
    kind           TEXT NOT NULL,    -- confirmation, receipt, cancellation
    sequence       BIGINT NOT NULL,  -- the event whose state implied the mail
    happened_at    BIGINT NOT NULL,  -- placed_at, paid_at or cancelled_at; compared with mail_since
    status         TEXT NOT NULL,    -- pending, sent, historical, dropped, failed
    recipient      TEXT,             -- recipient, subject and body are NULL once the order is erased
    subject        TEXT,
    body           TEXT,
    created_at     BIGINT NOT NULL,  -- when recorded; also the message's Date
    sent_at        BIGINT,           -- set only after the transport accepted the mail
    attempts       BIGINT NOT NULL DEFAULT 0,
    last_error     TEXT,
    claimed_until  BIGINT,           -- a sender's lease: two mailers never send one mail at once
    erased_at      BIGINT,
    PRIMARY KEY (order_id, kind)
);

CREATE INDEX mails_by_status ON mails (status, created_at);

-- One row (id = 1), written by the first batch the ledger sees.
CREATE TABLE mailer_settings (
    id          INTEGER PRIMARY KEY,
    mail_since  BIGINT NOT NULL,     -- mail about anything that happened before is 'historical'
    created_at  BIGINT NOT NULL
);
