package domain

import (
	"fmt"
	"strings"
)

// Position places a status in an order's life, for the rule that a merchant
// never sees an older status after a newer one (docs/security.md#ordered-notifications).
// It differs from Rank in one place: a TRADE_CLOSED of an order that was
// never paid (an expiry, or a trade Youzan closed unpaid) comes after
// WAIT_BUYER_PAY but before every paid status, because Apply still moves such
// an order to a paid status: a buyer who pays a closed QR must be announced,
// and the close must not be announced after it. A TRADE_CLOSED after
// payment (a refund) comes after everything. Unknown statuses are 0.
func Position(status string, closedUnpaid bool) int {
	if status == StatusTradeClosed && closedUnpaid {
		return 15
	}
	return rank[status] * 10
}

// Position of the event; see the package function.
func (e PaymentEvent) Position() int { return Position(e.Status, e.ClosedUnpaid()) }

// Position of the order's current status.
func (o Order) Position() int {
	return Position(o.Status, o.Status == StatusTradeClosed && !o.EverPaid)
}

// ClosedUnpaid reports whether e announces the close of an order that was
// never paid. Such events carry the order-derived id (FromOrder); a payment
// of 0 also counts, for events published before that id was used for every
// unpaid close.
func (e PaymentEvent) ClosedUnpaid() bool {
	return e.Status == StatusTradeClosed && (strings.HasPrefix(e.EventID, "order:") || e.Payment == 0)
}

// VerifyEvent reports why ev cannot be an event yzpay published for the
// stored order o, or nil. The store may legitimately be further along than
// ev (ev is then older, and the ordering rule decides whether it is still
// sent), but never behind it: the tradefetcher and the sweeper write the
// store before they publish. What the merchant is told — status, payment,
// trade and QR — must be what the store holds for that status.
func VerifyEvent(ev PaymentEvent, o Order) error {
	switch {
	case ev.OrderID != o.OrderID:
		return fmt.Errorf("event for order %q checked against order %q", ev.OrderID, o.OrderID)
	case Rank(ev.Status) == 0:
		return fmt.Errorf("status %q is not one yzpay announces", ev.Status)
	case ev.QRID != o.QRID:
		return fmt.Errorf("qr_id %d, but the order's QR is %d", ev.QRID, o.QRID)
	case ev.Position() > o.Position():
		return fmt.Errorf("status %s, but the order is only at %s", ev.Status, o.Status)
	}
	paid := IsPaid(ev.Status) || (ev.Status == StatusTradeClosed && !ev.ClosedUnpaid())
	switch {
	case ev.ClosedUnpaid():
		if ev.EventID != EventID("", ev.OrderID, ev.Status) && ev.EventID != EventID(ev.TID, ev.OrderID, ev.Status) {
			return fmt.Errorf("event id %q is not the order's", ev.EventID)
		}
	case ev.TID == "" || ev.EventID != EventID(ev.TID, ev.OrderID, ev.Status):
		return fmt.Errorf("event id %q does not match trade %q and status", ev.EventID, ev.TID)
	}
	if !paid {
		if ev.Payment != 0 {
			return fmt.Errorf("payment %d on unpaid status %s", ev.Payment, ev.Status)
		}
		return nil
	}
	switch {
	case !o.EverPaid:
		return fmt.Errorf("paid status %s, but the order was never paid", ev.Status)
	case ev.TID != o.TID:
		return fmt.Errorf("trade %q, but the order was paid by another trade", ev.TID)
	case ev.Payment != o.Payment:
		return fmt.Errorf("payment %d, but the order holds %d", ev.Payment, o.Payment)
	}
	return nil
}
