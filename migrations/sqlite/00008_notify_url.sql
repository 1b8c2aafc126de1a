-- +goose Up

-- Same as migrations/postgres/00008_notify_url.sql.
ALTER TABLE checkouts ADD COLUMN notify_url TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE checkouts DROP COLUMN notify_url;
