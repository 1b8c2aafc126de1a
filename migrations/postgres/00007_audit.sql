-- +goose Up

-- audit_log keeps every operator action taken in the console (README,
-- "Operator console"): who (the session), what, when, and the order or
-- event it touched. Append-only; read newest first, per order.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    who        text NOT NULL,
    action     text NOT NULL,
    order_id   text COLLATE "C" NOT NULL DEFAULT '',
    event_id   text COLLATE "C" NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_order_idx ON audit_log (order_id, id);

-- +goose Down
DROP TABLE audit_log;
