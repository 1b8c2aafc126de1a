package domain

import "time"

// ParkedReceipt is a verified push whose trade Youzan answered "not found".
// It waits in the store, not in JetStream, so that thousands of them cannot
// hold the receipt consumer's ack-pending slots: a retrier asks Youzan again
// on FETCH_RETRY_SCHEDULE and feeds the receipt back into the pipeline once
// the trade exists, or gives it up (State dead) after FETCH_GIVE_UP_AFTER.
type ParkedReceipt struct {
	TID        string
	Type       string // the push type, i.e. the webhook subject's last token
	Status     string // the status the push announced ("" when none)
	Body       []byte // the verified push body, republished as it came
	ReceivedAt time.Time
	State      string // ReceiptParked or ReceiptDead
	Attempts   int    // trade.get calls that did not find the trade
	LastError  string // truncated, never a secret
	FirstSeen  time.Time
	LastTryAt  time.Time
	NextTryAt  time.Time // when the retrier asks Youzan again (parked only)
	DeadAt     time.Time // when it was given up (dead only)
}

// Parked receipt states.
const (
	ReceiptParked = "parked"
	ReceiptDead   = "dead"
)

// ReceiptTry is the outcome of one more trade.get for a parked receipt that
// still did not find the trade.
type ReceiptTry struct {
	At    time.Time
	Error string
	// Dead gives the receipt up; otherwise NextTryAt is when to ask again.
	Dead      bool
	NextTryAt time.Time
}
