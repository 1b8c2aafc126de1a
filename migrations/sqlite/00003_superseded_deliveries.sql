-- +goose Up

-- See the Postgres migration of the same number. SQLite adds generated
-- columns only as VIRTUAL; an index on one works the same.
DROP INDEX deliveries_state_idx;
ALTER TABLE deliveries DROP COLUMN state;
ALTER TABLE deliveries ADD COLUMN superseded_at INTEGER;
ALTER TABLE deliveries ADD COLUMN state TEXT GENERATED ALWAYS AS (
    CASE
        WHEN delivered_at IS NOT NULL THEN 'delivered'
        WHEN superseded_at IS NOT NULL THEN 'superseded'
        WHEN given_up_at IS NOT NULL THEN 'failed'
        ELSE 'pending'
    END) VIRTUAL;
CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at, event_id, endpoint);

-- +goose Down
DROP INDEX deliveries_state_idx;
ALTER TABLE deliveries DROP COLUMN state;
ALTER TABLE deliveries DROP COLUMN superseded_at;
ALTER TABLE deliveries ADD COLUMN state TEXT GENERATED ALWAYS AS (
    CASE
        WHEN delivered_at IS NOT NULL THEN 'delivered'
        WHEN given_up_at IS NOT NULL THEN 'failed'
        ELSE 'pending'
    END) VIRTUAL;
CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at, event_id, endpoint);
