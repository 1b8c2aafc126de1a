package domain

import "time"

// AttemptRecord is one row of the attempt log: one POST to one endpoint,
// whatever its outcome. Superseded deliveries send nothing and have none.
type AttemptRecord struct {
	EventID    string
	OrderID    string
	Endpoint   string
	Status     string // the event's trade status
	Attempt    int    // 1 for the first POST of this event to this endpoint
	At         time.Time
	DurationMS int64
	HTTPStatus int    // 0 when no answer
	ErrorClass string // one of the AttemptError* classes; "" on success
	Error      string // truncated, never a secret
	// Excerpt is the first bytes of the merchant's response body (at most
	// MaxExcerptLen, valid UTF-8). The response is the merchant's: our
	// request (which carries a sign) is never stored here.
	Excerpt string
	Outcome string // AttemptDelivered, AttemptRetry or AttemptGivenUp
}

// MaxExcerptLen bounds AttemptRecord.Excerpt (1 KiB).
const MaxExcerptLen = 1024

// Attempt outcomes.
const (
	AttemptDelivered = "delivered"
	AttemptRetry     = "retry"
	AttemptGivenUp   = "given_up"
)

// Attempt error classes: what an operator needs to tell "their server said
// no" from "we never reached it".
const (
	AttemptErrorTimeout  = "timeout"     // no answer within PUSH_TIMEOUT
	AttemptErrorDNS      = "dns"         // host name did not resolve
	AttemptErrorConnect  = "connect"     // TCP connection refused or reset
	AttemptErrorTLS      = "tls"         // handshake or certificate failure
	AttemptErrorHTTP     = "http_status" // answered, but not 2xx
	AttemptErrorProtocol = "protocol"    // bad URL, malformed answer, anything else
	AttemptErrorBlocked  = "blocked"     // a per-order notify_url refused before sending (SSRF guard)
)

// Outcome says what the attempt led to.
func (a Attempt) Outcome() string {
	switch {
	case a.Delivered:
		return AttemptDelivered
	case a.GiveUp:
		return AttemptGivenUp
	}
	return AttemptRetry
}

// TimelineEntry is one thing that happened to an order, for the admin
// timeline (GET /api/admin/orders/{order_id}/timeline) and the console.
// Which fields are set depends on Kind.
type TimelineEntry struct {
	At   time.Time
	Kind string // one of the Timeline* kinds
	// Status: the order's status after the entry (order_created,
	// observation, status_changed) or the event's (attempt, superseded).
	Status     string
	EventID    string
	Endpoint   string
	Attempt    int
	HTTPStatus int
	Error      string
	DurationMS int64
	Excerpt    string
	Detail     string
	// Added for attempts: the error class and outcome, as in AttemptRecord.
	ErrorClass string
	Outcome    string
}

// Timeline entry kinds.
const (
	// TimelineOrderCreated: the order was created (Detail names the QR).
	TimelineOrderCreated = "order_created"
	// TimelineObservation: a reading of the trade from Youzan (after a
	// push was received, or by the sweeper) that did not move the order.
	TimelineObservation = "observation"
	// TimelineStatusChanged: a reading or an expiry moved the order;
	// EventID is the event published for it.
	TimelineStatusChanged = "status_changed"
	// TimelineAttempt: one POST to a merchant endpoint.
	TimelineAttempt = "attempt"
	// TimelineSuperseded: an event not sent to an endpoint because it
	// already had a newer status.
	TimelineSuperseded = "superseded"
)
