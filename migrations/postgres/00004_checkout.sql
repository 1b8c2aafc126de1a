-- +goose Up

-- checkouts binds an order to its hosted checkout page (/pay/<token>). The
-- token is the page's only key: random (128 bits or more), so it can be
-- handed to a buyer without revealing the order_id or letting anyone guess
-- other orders' pages. One page per order; return_url is part of the
-- order's identity for idempotent creates ('' when none was given).
CREATE TABLE checkouts (
    token      text COLLATE "C" PRIMARY KEY CHECK (char_length(token) BETWEEN 22 AND 64),
    order_id   text COLLATE "C" NOT NULL UNIQUE REFERENCES orders (order_id) ON DELETE CASCADE,
    return_url text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE checkouts;
