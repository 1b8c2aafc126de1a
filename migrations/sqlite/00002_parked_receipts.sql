-- +goose Up

-- Same table as migrations/postgres/00002_parked_receipts.sql (times are
-- Unix microseconds UTC, as in 00001_init.sql).
CREATE TABLE parked_receipts (
    tid         TEXT    NOT NULL PRIMARY KEY CHECK (length(tid) BETWEEN 1 AND 128),
    push_type   TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL DEFAULT '',
    body        BLOB    NOT NULL,
    received_at INTEGER,
    state       TEXT    NOT NULL DEFAULT 'parked' CHECK (state IN ('parked', 'dead')),
    attempts    INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 0),
    last_error  TEXT    NOT NULL DEFAULT '',
    first_seen  INTEGER NOT NULL,
    last_try_at INTEGER NOT NULL,
    next_try_at INTEGER,
    dead_at     INTEGER
) STRICT;

CREATE INDEX parked_receipts_due_idx ON parked_receipts (next_try_at, tid) WHERE state = 'parked';
CREATE INDEX parked_receipts_state_idx ON parked_receipts (state, first_seen, tid);

-- +goose Down
DROP TABLE parked_receipts;
