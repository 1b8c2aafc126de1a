-- +goose Up

-- A delivery is superseded when its endpoint already had a newer status of
-- the same order when the event was due: it is never sent
-- (docs/security.md#ordered-notifications). The derived state gains that
-- value; a generated column's expression cannot be altered, so it is
-- dropped and added again (with its index).
DROP INDEX deliveries_state_idx;
ALTER TABLE deliveries DROP COLUMN state;
ALTER TABLE deliveries ADD COLUMN superseded_at timestamptz;
ALTER TABLE deliveries ADD COLUMN state text GENERATED ALWAYS AS (
    CASE
        WHEN delivered_at IS NOT NULL THEN 'delivered'
        WHEN superseded_at IS NOT NULL THEN 'superseded'
        WHEN given_up_at IS NOT NULL THEN 'failed'
        ELSE 'pending'
    END) STORED;
CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at, event_id, endpoint);

-- +goose Down
DROP INDEX deliveries_state_idx;
ALTER TABLE deliveries DROP COLUMN state;
ALTER TABLE deliveries DROP COLUMN superseded_at;
ALTER TABLE deliveries ADD COLUMN state text GENERATED ALWAYS AS (
    CASE
        WHEN delivered_at IS NOT NULL THEN 'delivered'
        WHEN given_up_at IS NOT NULL THEN 'failed'
        ELSE 'pending'
    END) STORED;
CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at, event_id, endpoint);
