package domain

import "time"

// Delivery is the state of one event's push to one merchant endpoint.
type Delivery struct {
	EventID        string
	Endpoint       string
	OrderID        string
	Status         string // the event's trade status
	Event          []byte // the event JSON, so an operator can replay it
	Attempts       int
	LastHTTPStatus int
	LastError      string // truncated, never a secret
	NextAttemptAt  time.Time
	DeliveredAt    time.Time
	GivenUpAt      time.Time
	// SupersededAt: the endpoint already had a newer status of the order
	// when this event was due, so it was not sent (and never will be).
	SupersededAt time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Delivery states for listing.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // given up
	// DeliverySuperseded: not sent, because the endpoint already had a
	// newer status of the same order (docs/security.md#ordered-notifications).
	DeliverySuperseded = "superseded"
)

// State is pending, delivered, superseded or failed.
func (d Delivery) State() string {
	switch {
	case !d.DeliveredAt.IsZero():
		return DeliveryDelivered
	case !d.SupersededAt.IsZero():
		return DeliverySuperseded
	case !d.GivenUpAt.IsZero():
		return DeliveryFailed
	}
	return DeliveryPending
}

// Attempt is one delivery attempt's outcome.
type Attempt struct {
	EventID       string
	Endpoint      string
	OrderID       string
	Status        string
	Event         []byte
	HTTPStatus    int    // 0 when no answer
	Error         string // "" on success; the store truncates it
	Delivered     bool
	NextAttemptAt time.Time // zero when none
	GiveUp        bool
	// Superseded: not sent, see Delivery.SupersededAt; it does not count
	// as an attempt. Error says which newer status the endpoint has.
	Superseded bool
	// Held: not sent, because the endpoint is paused; it does not count as
	// an attempt. NextAttemptAt zero parks the delivery in the store until
	// the endpoint resumes; set, it is queued again (see
	// services/notifier/health.go).
	Held bool
	At   time.Time
	// For the attempt log (AttemptRecord): how long the POST took, why it
	// failed, and the first bytes of the answer.
	Duration   time.Duration
	ErrorClass string
	Excerpt    string
}
