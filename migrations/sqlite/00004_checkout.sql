-- +goose Up

-- Same as migrations/postgres/00004_checkout.sql (created_at in Unix
-- microseconds UTC, as everywhere in the SQLite schema).
CREATE TABLE checkouts (
    token      TEXT    NOT NULL PRIMARY KEY CHECK (length(token) BETWEEN 22 AND 64),
    order_id   TEXT    NOT NULL UNIQUE REFERENCES orders (order_id) ON DELETE CASCADE,
    return_url TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE checkouts;
