package domain

import "time"

// AuditEntry is one operator action taken in the console (or another admin
// surface): who did what to which order or delivery, and when. Entries are
// only ever added.
type AuditEntry struct {
	ID int64 // assigned by the store
	At time.Time
	// Who is the console session: its short id and the label the operator
	// gave at login ("a1b2c3d4 (li)"); never a password or key.
	Who string
	// Action: login, logout, replay, replay_all, close, reconcile.
	Action string
	// OrderID and EventID name what the action touched ("" when none).
	OrderID string
	EventID string
	// Detail is a short human-readable outcome ("2 deliveries reopened",
	// the error code of a refusal).
	Detail string
}
