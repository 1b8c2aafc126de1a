-- +goose Up

-- orders binds a merchant order_id to the Youzan QR code created for it and
-- carries the order's latest trade state. Money is integer fen; every
-- timestamp is timestamptz (UTC on the wire). Identifiers compare bytewise
-- (COLLATE "C") so keyset paging orders exactly like the SQLite backend and
-- does not depend on the server's locale.
CREATE TABLE orders (
    order_id    text COLLATE "C" PRIMARY KEY
                CHECK (char_length(order_id) BETWEEN 1 AND 64),
    name        text   NOT NULL,
    price       bigint NOT NULL CHECK (price >= 0),
    -- NULL until the QR is attached; attached at most once (AttachQR only
    -- writes WHERE qr_id IS NULL).
    qr_id       bigint,
    qr_url      text   NOT NULL DEFAULT '',
    status      text   NOT NULL DEFAULT 'WAIT_BUYER_PAY',
    -- First trade seen for the QR; never overwritten.
    tid         text COLLATE "C",
    payment     bigint NOT NULL DEFAULT 0 CHECK (payment >= 0),
    buyer_id    text   NOT NULL DEFAULT '',
    pay_type    text   NOT NULL DEFAULT '',
    paid_at     timestamptz,
    -- Kept separately from status: an order closed after payment must never
    -- look like an expired unpaid one.
    ever_paid   boolean NOT NULL DEFAULT false,
    -- The right to create the Youzan QR, so that concurrent creators of the
    -- same order make one QR. A claim past claim_until is dead and may be
    -- taken again (the holder crashed).
    claim_token text,
    claim_until timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- An order is never bound to two QR codes and a QR code never to two orders.
CREATE UNIQUE INDEX orders_qr_id_key ON orders (qr_id) WHERE qr_id IS NOT NULL;
CREATE INDEX orders_tid_idx ON orders (tid) WHERE tid IS NOT NULL;
-- Listing by status and the unpaid-order scans, in keyset order.
CREATE INDEX orders_status_created_idx ON orders (status, created_at, order_id);
-- Listing without a status filter, in keyset order.
CREATE INDEX orders_created_idx ON orders (created_at, order_id);

-- observations is the status history: every reading of a trade from Youzan
-- (source 'youzan') and every expiry (source 'expiry'), with whether it moved
-- the order.
CREATE TABLE observations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    text COLLATE "C" NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    source      text   NOT NULL CHECK (source IN ('youzan', 'expiry')),
    qr_id       bigint,
    tid         text   NOT NULL DEFAULT '',
    status      text   NOT NULL,
    payment     bigint NOT NULL DEFAULT 0,
    buyer_id    text   NOT NULL DEFAULT '',
    pay_type    text   NOT NULL DEFAULT '',
    paid_at     timestamptz,
    observed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    changed     boolean NOT NULL,
    from_status text   NOT NULL
);

CREATE INDEX observations_order_idx ON observations (order_id, id);

-- deliveries is the state of one event's push to one merchant endpoint.
CREATE TABLE deliveries (
    event_id         text COLLATE "C" NOT NULL,
    endpoint         text COLLATE "C" NOT NULL,
    order_id         text COLLATE "C" NOT NULL DEFAULT '',
    status           text   NOT NULL DEFAULT '',
    -- The exact bytes pushed (bytea, not jsonb: jsonb would reformat the body
    -- and a replay must send what was signed).
    event            bytea,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_http_status integer NOT NULL DEFAULT 0,
    last_error       text   NOT NULL DEFAULT '',
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    given_up_at      timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    -- Derived, so it can never disagree with the timestamps it summarises.
    state            text GENERATED ALWAYS AS (
                         CASE
                             WHEN delivered_at IS NOT NULL THEN 'delivered'
                             WHEN given_up_at IS NOT NULL THEN 'failed'
                             ELSE 'pending'
                         END) STORED,
    PRIMARY KEY (event_id, endpoint)
);

CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at, event_id, endpoint);
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint, updated_at, event_id);
CREATE INDEX deliveries_order_idx ON deliveries (order_id);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE observations;
DROP TABLE orders;
