-- +goose Up

-- endpoint_health is each merchant endpoint's health, shared by every
-- notifier replica (services/notifier/health.go): paused after failing
-- every attempt for ENDPOINT_PAUSE_AFTER; next_probe_at is when a paused
-- endpoint may be probed again (or an active one drained), claimed by one
-- replica at a time.
CREATE TABLE endpoint_health (
    endpoint      text PRIMARY KEY,
    state         text NOT NULL DEFAULT 'active',
    since         timestamptz NOT NULL,
    failing_since timestamptz,
    last_error    text NOT NULL DEFAULT '',
    next_probe_at timestamptz,
    updated_at    timestamptz NOT NULL
);

-- +goose Down
DROP TABLE endpoint_health;
