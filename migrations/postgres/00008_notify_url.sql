-- +goose Up

-- notify_url: where this order's notifications go instead of the PUSH_API
-- endpoints ('' = the configured endpoints). Part of the order's identity for
-- idempotent creates, like return_url. An order created before this column
-- had no way to name one, so '' is right for every existing row.
ALTER TABLE checkouts ADD COLUMN notify_url text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE checkouts DROP COLUMN notify_url;
