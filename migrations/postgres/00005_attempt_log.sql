-- +goose Up

-- delivery_attempts is the attempt log: one row per POST to a merchant
-- endpoint, written in the same statement as the delivery it counts
-- (RecordAttempts), kept for ATTEMPT_LOG_RETENTION. No foreign key to
-- deliveries: the log must survive a delivery row being rewritten, and the
-- sweeper deletes by age alone.
CREATE TABLE delivery_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    text COLLATE "C" NOT NULL,
    order_id    text COLLATE "C" NOT NULL DEFAULT '',
    endpoint    text COLLATE "C" NOT NULL,
    status      text    NOT NULL DEFAULT '',
    attempt     integer NOT NULL CHECK (attempt >= 1),
    at          timestamptz NOT NULL,
    duration_ms bigint  NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    http_status integer NOT NULL DEFAULT 0,
    error_class text    NOT NULL DEFAULT '',
    error       text    NOT NULL DEFAULT '',
    -- First bytes (at most 1 KiB) of the merchant's answer.
    excerpt     text    NOT NULL DEFAULT '' CHECK (octet_length(excerpt) <= 1024),
    outcome     text    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'given_up'))
);

CREATE INDEX delivery_attempts_event_idx ON delivery_attempts (event_id, at);
CREATE INDEX delivery_attempts_order_idx ON delivery_attempts (order_id, at);
-- The retention sweep deletes the oldest rows first.
CREATE INDEX delivery_attempts_at_idx ON delivery_attempts (at);

-- +goose Down
DROP TABLE delivery_attempts;
