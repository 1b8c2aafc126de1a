-- +goose Up

-- Same as migrations/postgres/00007_audit.sql (at in Unix microseconds UTC).
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    who      TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    order_id TEXT    NOT NULL DEFAULT '',
    event_id TEXT    NOT NULL DEFAULT '',
    detail   TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_log_order_idx ON audit_log (order_id, id);

-- +goose Down
DROP TABLE audit_log;
