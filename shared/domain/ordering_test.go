package domain

import (
	"testing"
	"time"
)

// The expiry's TRADE_CLOSED keeps one id when a trade is bound to the order
// afterwards (a buyer scans the closed QR and does not pay): a republished
// close must not become a second notification.
func TestExpiryCloseKeepsItsIDWhenATradeIsBoundLater(t *testing.T) {
	now := time.Now()
	o := Order{OrderID: "o-1", Price: 100, QRID: 501, Status: StatusTradeClosed}
	before := FromOrder(o)
	Apply(&o, Observation{QRID: 501, TID: "T1", Status: StatusWaitBuyerPay, ObservedAt: now}, now)
	if o.TID != "T1" {
		t.Fatalf("trade not bound: %+v", o)
	}
	if after := FromOrder(o); after.EventID != before.EventID || after.EventID != "order:o-1:TRADE_CLOSED" {
		t.Errorf("close event id %q, then %q after a trade was bound", before.EventID, after.EventID)
	}
}

func TestPositionOrdersExpiryBeforePayment(t *testing.T) {
	closedUnpaid := PaymentEvent{EventID: "order:o:TRADE_CLOSED", Status: StatusTradeClosed}
	success := PaymentEvent{EventID: "T:TRADE_SUCCESS", Status: StatusTradeSuccess, Payment: 100}
	refunded := PaymentEvent{EventID: "T:TRADE_CLOSED", Status: StatusTradeClosed, Payment: 100}
	wait := PaymentEvent{EventID: "T:WAIT_BUYER_PAY", Status: StatusWaitBuyerPay}
	if !(wait.Position() < closedUnpaid.Position() && closedUnpaid.Position() < success.Position() && success.Position() < refunded.Position()) {
		t.Errorf("positions wait %d, closed unpaid %d, success %d, refunded %d", wait.Position(), closedUnpaid.Position(), success.Position(), refunded.Position())
	}
}

func TestVerifyEvent(t *testing.T) {
	paid := Order{OrderID: "o", QRID: 5, TID: "T", Status: StatusTradeSuccess, Payment: 100, EverPaid: true}
	ev := func(tid, status string, payment int64) PaymentEvent {
		return PaymentEvent{V: 1, EventID: EventID(tid, "o", status), OrderID: "o", QRID: 5, TID: tid, Status: status, Payment: payment}
	}
	closed := ev("", StatusTradeClosed, 0)
	for _, c := range []struct {
		name string
		ev   PaymentEvent
		o    Order
		ok   bool
	}{
		{"current status", ev("T", StatusTradeSuccess, 100), paid, true},
		{"older paid status", ev("T", StatusWaitSellerSendGoods, 100), paid, true},
		{"expiry close before the late payment", closed, paid, true},
		{"wrong payment", ev("T", StatusTradeSuccess, 1), paid, false},
		{"older status, wrong payment", ev("T", StatusTradePaid, 1), paid, false},
		{"another trade", ev("X", StatusTradeSuccess, 100), paid, false},
		{"status not reached", ev("T", StatusTradeClosed, 100), paid, false},
		{"paid status on an unpaid order", ev("T", StatusTradePaid, 100), Order{OrderID: "o", QRID: 5, Status: StatusTradeClosed}, false},
		{"another QR", PaymentEvent{V: 1, EventID: "T:TRADE_SUCCESS", OrderID: "o", QRID: 6, TID: "T", Status: StatusTradeSuccess, Payment: 100}, paid, false},
		{"event id of another status", PaymentEvent{V: 1, EventID: "T:TRADE_CLOSED", OrderID: "o", QRID: 5, TID: "T", Status: StatusTradeSuccess, Payment: 100}, paid, false},
		{"unknown status", ev("T", "REFUND_EVERYTHING", 0), paid, false},
	} {
		if err := VerifyEvent(c.ev, c.o); (err == nil) != c.ok {
			t.Errorf("%s: VerifyEvent = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
