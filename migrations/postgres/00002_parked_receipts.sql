-- +goose Up

-- parked_receipts holds verified pushes whose trade Youzan answered "not
-- found". They wait here rather than in JetStream (a NAK'd message stays
-- ack-pending, so thousands of them would starve real receipts): the
-- tradefetcher asks Youzan again on FETCH_RETRY_SCHEDULE, republishes the
-- receipt once the trade exists, and gives it up (state 'dead') after
-- FETCH_GIVE_UP_AFTER. One row per trade id.
CREATE TABLE parked_receipts (
    tid         text COLLATE "C" PRIMARY KEY CHECK (char_length(tid) BETWEEN 1 AND 128),
    push_type   text   NOT NULL DEFAULT '',
    status      text   NOT NULL DEFAULT '',
    -- The verified push as it came, republished unchanged.
    body        bytea  NOT NULL,
    received_at timestamptz,
    state       text   NOT NULL DEFAULT 'parked' CHECK (state IN ('parked', 'dead')),
    attempts    integer NOT NULL DEFAULT 1 CHECK (attempts >= 0),
    last_error  text   NOT NULL DEFAULT '',
    first_seen  timestamptz NOT NULL,
    last_try_at timestamptz NOT NULL,
    next_try_at timestamptz,
    dead_at     timestamptz
);

-- The retrier's scan: parked receipts that are due.
CREATE INDEX parked_receipts_due_idx ON parked_receipts (next_try_at, tid) WHERE state = 'parked';
-- Listing by state, oldest first.
CREATE INDEX parked_receipts_state_idx ON parked_receipts (state, first_seen, tid);

-- +goose Down
DROP TABLE parked_receipts;
