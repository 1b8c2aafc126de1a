-- +goose Up

-- See the Postgres migration of the same number.
CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    order_id    TEXT    NOT NULL DEFAULT '',
    endpoint    TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT '',
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    http_status INTEGER NOT NULL DEFAULT 0,
    error_class TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    excerpt     TEXT    NOT NULL DEFAULT '' CHECK (length(CAST(excerpt AS BLOB)) <= 1024),
    outcome     TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'given_up'))
) STRICT;

CREATE INDEX delivery_attempts_event_idx ON delivery_attempts (event_id, at);
CREATE INDEX delivery_attempts_order_idx ON delivery_attempts (order_id, at);
CREATE INDEX delivery_attempts_at_idx ON delivery_attempts (at);

-- +goose Down
DROP TABLE delivery_attempts;
