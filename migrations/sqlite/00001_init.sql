-- +goose Up

-- Same schema as migrations/postgres/00001_init.sql. Differences: every
-- timestamp is an INTEGER of Unix microseconds UTC (sortable, exact, and the
-- precision Postgres keeps), booleans are 0/1 INTEGERs, and the tables are
-- STRICT so a wrong type is an error rather than silently stored. Text
-- compares bytewise (BINARY), matching COLLATE "C" on Postgres.
CREATE TABLE orders (
    order_id    TEXT    NOT NULL PRIMARY KEY
                CHECK (length(order_id) BETWEEN 1 AND 64),
    name        TEXT    NOT NULL,
    price       INTEGER NOT NULL CHECK (price >= 0),
    -- NULL until the QR is attached; attached at most once.
    qr_id       INTEGER,
    qr_url      TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL DEFAULT 'WAIT_BUYER_PAY',
    -- First trade seen for the QR; never overwritten.
    tid         TEXT,
    payment     INTEGER NOT NULL DEFAULT 0 CHECK (payment >= 0),
    buyer_id    TEXT    NOT NULL DEFAULT '',
    pay_type    TEXT    NOT NULL DEFAULT '',
    paid_at     INTEGER,
    ever_paid   INTEGER NOT NULL DEFAULT 0 CHECK (ever_paid IN (0, 1)),
    -- The right to create the Youzan QR; a claim past claim_until is dead.
    claim_token TEXT,
    claim_until INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX orders_qr_id_key ON orders (qr_id) WHERE qr_id IS NOT NULL;
CREATE INDEX orders_tid_idx ON orders (tid) WHERE tid IS NOT NULL;
CREATE INDEX orders_status_created_idx ON orders (status, created_at, order_id);
CREATE INDEX orders_created_idx ON orders (created_at, order_id);

CREATE TABLE observations (
    id          INTEGER PRIMARY KEY,
    order_id    TEXT    NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    source      TEXT    NOT NULL CHECK (source IN ('youzan', 'expiry')),
    qr_id       INTEGER,
    tid         TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL,
    payment     INTEGER NOT NULL DEFAULT 0,
    buyer_id    TEXT    NOT NULL DEFAULT '',
    pay_type    TEXT    NOT NULL DEFAULT '',
    paid_at     INTEGER,
    observed_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    changed     INTEGER NOT NULL CHECK (changed IN (0, 1)),
    from_status TEXT    NOT NULL
) STRICT;

CREATE INDEX observations_order_idx ON observations (order_id, id);

CREATE TABLE deliveries (
    event_id         TEXT    NOT NULL,
    endpoint         TEXT    NOT NULL,
    order_id         TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL DEFAULT '',
    -- The exact bytes pushed, so a replay sends what was signed.
    event            BLOB,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_http_status INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    next_attempt_at  INTEGER,
    delivered_at     INTEGER,
    given_up_at      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    state            TEXT GENERATED ALWAYS AS (
                         CASE
                             WHEN delivered_at IS NOT NULL THEN 'delivered'
                             WHEN given_up_at IS NOT NULL THEN 'failed'
                             ELSE 'pending'
                         END) STORED,
    PRIMARY KEY (event_id, endpoint)
) STRICT;

CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at, event_id, endpoint);
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint, updated_at, event_id);
CREATE INDEX deliveries_order_idx ON deliveries (order_id);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE observations;
DROP TABLE orders;
