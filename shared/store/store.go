// Package store defines the one piece of state yzpay owns: the binding of a
// merchant order_id to a Youzan qr_id and tid, the order's status history and
// the delivery state of every merchant push. Backends live in subpackages
// (postgres, and sqlite for the embedded SQLite file) and both
// pass the contract suite in storetest.
package store

import (
	"context"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
)

// Reservation is the result of Reserve.
type Reservation struct {
	Order domain.Order
	// Claimed: the caller holds the right to create the Youzan QR for this
	// order until the claim expires, and must then call AttachQR. When false
	// and Order.QRID == 0, another caller holds a live claim: wait and retry.
	Claimed bool
	// ClaimToken identifies the claim, for ReleaseClaim; "" when not Claimed.
	ClaimToken string
}

// OrderFilter selects orders; results are ordered by (CreatedAt, OrderID).
type OrderFilter struct {
	Status        string
	CreatedAfter  time.Time // inclusive; zero = no bound
	CreatedBefore time.Time // exclusive; zero = no bound
	// Keyset cursor: return orders strictly after (AfterCreatedAt, AfterOrderID).
	AfterCreatedAt time.Time
	AfterOrderID   string
	Limit          int // default 100, max 1000
}

// DeliveryFilter selects deliveries, ordered by (UpdatedAt, EventID, Endpoint).
type DeliveryFilter struct {
	State    string // "" = any
	Endpoint string // "" = any
	Limit    int    // default 100, max 1000
}

// ReceiptFilter selects parked receipts, ordered by (FirstSeen, TID).
type ReceiptFilter struct {
	State string // domain.ReceiptParked, domain.ReceiptDead, or "" for both
	Limit int    // default 100, max 1000
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	OrderID string // "" = every entry
	Limit   int    // default 100, max 1000
}

// Store is implemented by postgres.Store and sqlite.Store.
type Store interface {
	// Reserve creates the order or returns the existing one (domain.ErrConflict if
	// name or price differ). See Reservation for the claim protocol that keeps
	// concurrent creators to one Youzan QR.
	Reserve(ctx context.Context, o domain.NewOrder, claimFor time.Duration) (Reservation, error)
	// AttachQR binds qr to the order if it has none yet and returns the order
	// as bound; if another QR won, the returned order carries that one.
	AttachQR(ctx context.Context, orderID string, qr domain.QRCode) (domain.Order, error)
	// AttachQRAndCheckout is AttachQR(c.OrderID, qr) followed by
	// BindCheckout(c), atomically: the order as bound (with the QR that
	// won) and the checkout page stored (c or the earlier one), with the
	// errors of those two. It is how a new order is completed: one commit
	// instead of two.
	AttachQRAndCheckout(ctx context.Context, qr domain.QRCode, c domain.Checkout) (domain.Order, domain.Checkout, error)
	// ReleaseClaim gives up a claim whose holder could not create the QR
	// (Youzan failed), so the merchant's retry need not wait for it to
	// expire. It does nothing if the claim is no longer the caller's.
	ReleaseClaim(ctx context.Context, orderID, token string) error

	OrderByID(ctx context.Context, orderID string) (domain.Order, error)
	// OrdersByID returns those of orderIDs that exist, in no set order.
	OrdersByID(ctx context.Context, orderIDs []string) ([]domain.Order, error)
	OrderByQRID(ctx context.Context, qrID int64) (domain.Order, error)
	OrderByTID(ctx context.Context, tid string) (domain.Order, error)
	ListOrders(ctx context.Context, f OrderFilter) ([]domain.Order, error)
	// UnpaidOrders lists orders at WAIT_BUYER_PAY with a QR, created in [from, to).
	UnpaidOrders(ctx context.Context, from, to time.Time, limit int) ([]domain.Order, error)

	// RecordObservations applies observations in one transaction, in order,
	// returning one domain.Change per observation. An observation whose QRID is not
	// one of ours yields a domain.Change with a zero domain.Order and Changed false.
	RecordObservations(ctx context.Context, obs []domain.Observation) ([]domain.Change, error)
	// CloseExpired moves an unpaid order to TRADE_CLOSED (Changed false if it
	// was no longer WAIT_BUYER_PAY).
	CloseExpired(ctx context.Context, orderID string, at time.Time) (domain.Change, error)

	// RecordAttempts counts one attempt per element, in order, in one
	// transaction, and appends each that was sent (not Superseded) to the
	// attempt log in the same transaction.
	RecordAttempts(ctx context.Context, a []domain.Attempt) ([]domain.Delivery, error)
	// AttemptsForEvent returns the event's attempt log, ordered by
	// (At, Endpoint, Attempt); none (no error) for an unknown event.
	AttemptsForEvent(ctx context.Context, eventID string) ([]domain.AttemptRecord, error)
	// OrderTimeline returns what happened to the order, in time order:
	// creation, trade observations, status changes, delivery attempts
	// and superseded deliveries. domain.ErrNotFound if no such order.
	OrderTimeline(ctx context.Context, orderID string) ([]domain.TimelineEntry, error)
	// DeleteAttemptsBefore deletes up to limit attempt-log rows older than
	// before and returns how many it deleted (the retention sweeper calls
	// it until that is less than limit).
	DeleteAttemptsBefore(ctx context.Context, before time.Time, limit int) (int, error)
	DeliveriesForEvent(ctx context.Context, eventID string) ([]domain.Delivery, error)
	// DeliveriesForOrders returns every delivery of the orders' events,
	// ordered by (EventID, Endpoint): what the notifier needs to keep each
	// endpoint's view of an order in order.
	DeliveriesForOrders(ctx context.Context, orderIDs []string) ([]domain.Delivery, error)
	// OrderState is OrdersByID and DeliveriesForOrders of orderIDs, and
	// their notify_urls, in one read: one round trip on Postgres, one
	// statement on SQLite (the notifier reads it once per batch).
	OrderState(ctx context.Context, orderIDs []string) (OrderState, error)
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]domain.Delivery, error)
	// ReopenDelivery clears GivenUpAt (and DeliveredAt) so a replay counts on.
	ReopenDelivery(ctx context.Context, eventID, endpoint string) (domain.Delivery, error)

	// ParkReceipts stores, in one transaction, receipts whose trade Youzan
	// did not find; each counts as one attempt at its LastTryAt. A trade id
	// already stored keeps its FirstSeen, State and NextTryAt (a re-push
	// neither postpones nor revives it) and counts one attempt more; the
	// body, type and status become the latest push's.
	ParkReceipts(ctx context.Context, rs []domain.ParkedReceipt) error
	// DueReceipts takes up to limit parked receipts whose NextTryAt is at
	// or before now, earliest first, and moves their NextTryAt to now+lease
	// so that other retriers leave them alone meanwhile.
	DueReceipts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]domain.ParkedReceipt, error)
	// RecordReceiptTry counts one more attempt that did not find the trade
	// (domain.ErrNotFound if the receipt is no longer stored).
	RecordReceiptTry(ctx context.Context, tid string, try domain.ReceiptTry) (domain.ParkedReceipt, error)
	// ResolveReceipt forgets a receipt once it is back in the pipeline,
	// unless it was parked again since it was read with attempts (the
	// republished receipt may already have come back not found); a tid not
	// stored is no error.
	ResolveReceipt(ctx context.Context, tid string, attempts int) error
	ListReceipts(ctx context.Context, f ReceiptFilter) ([]domain.ParkedReceipt, error)
	// ReopenReceipt makes a receipt (dead or parked) due at at, for an
	// operator's replay; its FirstSeen stays, so a dead one that is still
	// not found is given up again after that one try. domain.ErrNotFound
	// if no such receipt.
	ReopenReceipt(ctx context.Context, tid string, at time.Time) (domain.ParkedReceipt, error)
	// BindCheckout stores c unless the order already has a checkout page,
	// and returns the one stored (c, or the earlier one: compare ReturnURL
	// and NotifyURL to detect a conflicting create). domain.ErrNotFound if the order
	// does not exist.
	BindCheckout(ctx context.Context, c domain.Checkout) (domain.Checkout, error)
	// CheckoutByToken returns the page's binding or domain.ErrNotFound.
	CheckoutByToken(ctx context.Context, token string) (domain.Checkout, error)

	// Endpoint health (services/notifier/health.go), shared by every
	// notifier replica.

	// NoteEndpoint applies one attempt's outcome to the endpoint's health
	// (ApplyOutcome, atomically) and reports whether its state changed.
	NoteEndpoint(ctx context.Context, o domain.EndpointOutcome, p HealthPolicy) (domain.EndpointHealth, bool, error)
	// ClaimEndpoint moves the endpoint's NextProbeAt to until if it is in
	// state and NextProbeAt is unset or at or before now: the one replica
	// that gets true probes (paused) or drains (active) it.
	ClaimEndpoint(ctx context.Context, endpoint, state string, now, until time.Time) (bool, error)
	// ResumeEndpoint makes a paused endpoint active (changed false if it
	// was active); domain.ErrNotFound if the endpoint has no health yet.
	ResumeEndpoint(ctx context.Context, endpoint string, at time.Time) (domain.EndpointHealth, bool, error)
	// ListEndpointHealth returns every endpoint with a health row, with its
	// number of pending deliveries, ordered by endpoint.
	ListEndpointHealth(ctx context.Context) ([]domain.EndpointHealth, error)
	// PendingDeliveries returns the endpoint's pending deliveries, oldest
	// (CreatedAt, EventID) first; heldOnly keeps those parked by a pause
	// (pending without NextAttemptAt).
	PendingDeliveries(ctx context.Context, endpoint string, heldOnly bool, limit int) ([]domain.Delivery, error)

	// RecordAudit appends an operator action (At zero = now) and returns
	// it with its ID.
	RecordAudit(ctx context.Context, e domain.AuditEntry) (domain.AuditEntry, error)
	// ListAudit returns audit entries newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]domain.AuditEntry, error)
	// PaidSince counts the orders paid at or after since and sums what
	// their buyers paid (fen), for the console's live strip.
	PaidSince(ctx context.Context, since time.Time) (count int, amountFen int64, err error)

	Ping(ctx context.Context) error
	Close() error
}
