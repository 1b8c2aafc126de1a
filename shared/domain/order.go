// Package domain holds what yzpay is about, free of any adapter: orders and
// their binding to a Youzan QR code and trade, the trade statuses and the
// lifecycle rules every store applies, merchant deliveries, the
// payment-status event, and the errors the API speaks. It imports nothing
// of ours; docs/architecture.md shows the packages around it.
package domain

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
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

// Validate checks what both backends require of a new order.
func (o NewOrder) Validate() error {
	if n := utf8.RuneCountInString(o.OrderID); n < 1 || n > 64 || !utf8.ValidString(o.OrderID) {
		return fmt.Errorf("order_id %q: must be 1 to 64 characters of valid UTF-8", o.OrderID)
	}
	if o.Price < 0 {
		return fmt.Errorf("order %q: negative price %d", o.OrderID, o.Price)
	}
	return nil
}

// AmountMismatch reports an order paid with another amount than its price.
// Youzan's figure is what was paid and is never replaced by the price; the
// merchant is told and decides.
func (o Order) AmountMismatch() bool { return o.EverPaid && o.Payment != o.Price }
