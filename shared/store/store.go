// Package store defines the one piece of state yzpay owns: the binding of a
// merchant order_id to a Youzan qr_id and tid, the order's status history and
// the delivery state of every merchant push. Backends live in subpackages
// (pgstore for Postgres, sqlitestore for the embedded SQLite file) and both
// pass the contract suite in storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every backend returns (wrapped) so callers can map them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: the order_id exists with a different name or price.
	ErrConflict = errors.New("order exists with a different name or price")
)

// Youzan trade statuses the store understands. Any other status string is
// recorded in the history but never moves an order.
const (
	StatusWaitBuyerPay          = "WAIT_BUYER_PAY"
	StatusTradePaid             = "TRADE_PAID"
	StatusPaid                  = "PAID"
	StatusWaitConfirm           = "WAIT_CONFIRM"
	StatusWaitSellerSendGoods   = "WAIT_SELLER_SEND_GOODS"
	StatusWaitBuyerConfirmGoods = "WAIT_BUYER_CONFIRM_GOODS"
	StatusTradeBuyerSigned      = "TRADE_BUYER_SIGNED"
	StatusTradeSuccess          = "TRADE_SUCCESS"
	StatusTradeClosed           = "TRADE_CLOSED"
)

// rank orders the lifecycle; a status moves an order only to a higher rank.
var rank = map[string]int{
	StatusWaitBuyerPay:          1,
	StatusTradePaid:             2,
	StatusPaid:                  2,
	StatusWaitConfirm:           3,
	StatusWaitSellerSendGoods:   4,
	StatusWaitBuyerConfirmGoods: 5,
	StatusTradeBuyerSigned:      6,
	StatusTradeSuccess:          7,
	StatusTradeClosed:           8,
}

// Rank is the position of status in Youzan's lifecycle; 0 for unknown statuses.
func Rank(status string) int { return rank[status] }

// IsPaid reports whether status means the buyer's money was received.
func IsPaid(status string) bool { r := rank[status]; return r >= 2 && r <= 7 }

// Advances reports whether an order at status cur (never paid if !curPaid)
// moves to next. Forward moves only; TRADE_CLOSED is terminal, except that an
// order closed without ever being paid (expired) still moves to a paid status:
// money received must never be hidden.
func Advances(cur string, everPaid bool, next string) bool {
	n := rank[next]
	if n == 0 {
		return false
	}
	if cur == StatusTradeClosed {
		return !everPaid && IsPaid(next)
	}
	return n > rank[cur]
}

// Apply moves o by one observation: the lifecycle rules every backend
// shares. changed reports a status move; touched reports that o must be
// written (status moved or a trade bound). now is the write time.
//
// An order follows one trade. The first trade seen is bound; a reading of
// another trade of the same QR code (a second buyer scanned it and gave up,
// say) changes nothing, except a payment while the order has none: then the
// order follows the paying trade, because money received must never be
// hidden, and an abandoned trade closing later must not close a paid order.
func Apply(o *Order, ob Observation, now time.Time) (changed, touched bool) {
	switch {
	case o.TID == "" && ob.TID != "":
		o.TID = ob.TID
		touched = true
	case ob.TID != "" && ob.TID != o.TID:
		if !IsPaid(ob.Status) || o.EverPaid {
			return false, false
		}
		o.TID = ob.TID
		touched = true
	}
	if Advances(o.Status, o.EverPaid, ob.Status) {
		o.Status = ob.Status
		changed, touched = true, true
		// Moving to TRADE_CLOSED keeps the paid fields: a refunded or
		// closed-after-payment order still shows what was paid.
		if IsPaid(ob.Status) {
			o.EverPaid = true
			// Zero fields in a later reading do not erase earlier ones.
			if ob.Payment != 0 {
				o.Payment = ob.Payment
			}
			if ob.BuyerID != "" {
				o.BuyerID = ob.BuyerID
			}
			if ob.PayType != "" {
				o.PayType = ob.PayType
			}
			switch {
			case !ob.PaidAt.IsZero():
				o.PaidAt = micro(ob.PaidAt)
			case o.PaidAt.IsZero() && !ob.ObservedAt.IsZero():
				// A paid order always has a PaidAt; the reading is the best
				// we know when Youzan gave no pay time.
				o.PaidAt = micro(ob.ObservedAt)
			case o.PaidAt.IsZero():
				o.PaidAt = now
			}
		}
	}
	if touched {
		o.UpdatedAt = now
	}
	return changed, touched
}

// micro is the precision both backends store times at.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// NewOrder is what a merchant asks for.
type NewOrder struct {
	OrderID string // 1..64 chars
	Name    string
	Price   int64 // fen
}

// Order is the stored binding and its latest state. Zero values mean "not yet":
// QRID 0 until a QR is attached, TID "" until a trade is seen.
type Order struct {
	OrderID   string
	Name      string
	Price     int64 // fen
	QRID      int64
	QRURL     string
	Status    string // WAIT_BUYER_PAY at creation
	TID       string
	Payment   int64 // fen actually paid; 0 until paid
	BuyerID   string
	PayType   string
	PaidAt    time.Time // zero until paid
	EverPaid  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Reservation is the result of Reserve.
type Reservation struct {
	Order Order
	// Claimed: the caller holds the right to create the Youzan QR for this
	// order until the claim expires, and must then call AttachQR. When false
	// and Order.QRID == 0, another caller holds a live claim: wait and retry.
	Claimed bool
	// ClaimToken identifies the claim, for ReleaseClaim; "" when not Claimed.
	ClaimToken string
}

// QRCode is what Youzan returned for an order.
type QRCode struct {
	ID  int64
	URL string
}

// Observation is one reading of a trade from Youzan.
type Observation struct {
	QRID       int64
	TID        string
	Status     string
	Payment    int64 // fen paid (0 when unpaid)
	BuyerID    string
	PayType    string
	PaidAt     time.Time // zero when unpaid
	ObservedAt time.Time
}

// Change is the effect of one observation.
type Change struct {
	Order   Order // the order after the observation
	Changed bool  // the status moved: publish an event
	From    string
}

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
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Delivery states for listing.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // given up
)

// State is pending, delivered or failed.
func (d Delivery) State() string {
	switch {
	case !d.DeliveredAt.IsZero():
		return DeliveryDelivered
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
	At            time.Time
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

// Store is implemented by pgstore and sqlitestore.
type Store interface {
	// Reserve creates the order or returns the existing one (ErrConflict if
	// name or price differ). See Reservation for the claim protocol that keeps
	// concurrent creators to one Youzan QR.
	Reserve(ctx context.Context, o NewOrder, claimFor time.Duration) (Reservation, error)
	// AttachQR binds qr to the order if it has none yet and returns the order
	// as bound; if another QR won, the returned order carries that one.
	AttachQR(ctx context.Context, orderID string, qr QRCode) (Order, error)
	// ReleaseClaim gives up a claim whose holder could not create the QR
	// (Youzan failed), so the merchant's retry need not wait for it to
	// expire. It does nothing if the claim is no longer the caller's.
	ReleaseClaim(ctx context.Context, orderID, token string) error

	OrderByID(ctx context.Context, orderID string) (Order, error)
	OrderByQRID(ctx context.Context, qrID int64) (Order, error)
	OrderByTID(ctx context.Context, tid string) (Order, error)
	ListOrders(ctx context.Context, f OrderFilter) ([]Order, error)
	// UnpaidOrders lists orders at WAIT_BUYER_PAY with a QR, created in [from, to).
	UnpaidOrders(ctx context.Context, from, to time.Time, limit int) ([]Order, error)

	// RecordObservations applies observations in one transaction, in order,
	// returning one Change per observation. An observation whose QRID is not
	// one of ours yields a Change with a zero Order and Changed false.
	RecordObservations(ctx context.Context, obs []Observation) ([]Change, error)
	// CloseExpired moves an unpaid order to TRADE_CLOSED (Changed false if it
	// was no longer WAIT_BUYER_PAY).
	CloseExpired(ctx context.Context, orderID string, at time.Time) (Change, error)

	RecordAttempts(ctx context.Context, a []Attempt) ([]Delivery, error)
	DeliveriesForEvent(ctx context.Context, eventID string) ([]Delivery, error)
	// DeliveriesForEvents is DeliveriesForEvent for a batch of events in one
	// query, ordered by (EventID, Endpoint).
	DeliveriesForEvents(ctx context.Context, eventIDs []string) ([]Delivery, error)
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// ReopenDelivery clears GivenUpAt (and DeliveredAt) so a replay counts on.
	ReopenDelivery(ctx context.Context, eventID, endpoint string) (Delivery, error)

	Ping(ctx context.Context) error
	Close() error
}
