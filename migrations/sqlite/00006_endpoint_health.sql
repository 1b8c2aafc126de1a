-- +goose Up

-- endpoint_health is each merchant endpoint's health, shared by every
-- notifier replica (services/notifier/health.go): paused after failing
-- every attempt for ENDPOINT_PAUSE_AFTER; next_probe_at is when a paused
-- endpoint may be probed again (or an active one drained), claimed by one
-- replica at a time. Times are unix microseconds.
CREATE TABLE endpoint_health (
    endpoint      TEXT PRIMARY KEY,
    state         TEXT NOT NULL DEFAULT 'active',
    since         INTEGER NOT NULL,
    failing_since INTEGER,
    last_error    TEXT NOT NULL DEFAULT '',
    next_probe_at INTEGER,
    updated_at    INTEGER NOT NULL
);

-- +goose Down
DROP TABLE endpoint_health;
