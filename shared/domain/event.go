package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// PaymentEvent is the normalized payment-status event (schema version 1).
type PaymentEvent struct {
	V          int       `json:"v"`
	EventID    string    `json:"event_id"`
	OrderID    string    `json:"order_id"`
	QRID       int64     `json:"qr_id"`
	TID        string    `json:"tid"`
	Status     string    `json:"status"`
	Payment    int64     `json:"payment"`
	UUID       string    `json:"uuid"`
	PayType    string    `json:"pay_type"`
	OccurredAt time.Time `json:"occurred_at"`
}

// EventID derives the id from the trade and status, so a repeated push can
// never publish a second event. An order closed by expiry has no trade; its
// id is derived from the order instead (FromOrder also uses that form for any
// close of an order never paid, so it stays one id when a trade is bound later).
func EventID(tid, orderID, status string) string {
	if tid == "" {
		return "order:" + orderID + ":" + status
	}
	return tid + ":" + status
}

// FromOrder builds the event announcing that o reached its current status.
// It depends only on the stored order, so a retry rebuilds the same event.
func FromOrder(o Order) PaymentEvent {
	payment := o.Payment
	if !IsPaid(o.Status) && !(o.Status == StatusTradeClosed && o.EverPaid) {
		payment = 0
	}
	id := EventID(o.TID, o.OrderID, o.Status)
	if o.Status == StatusTradeClosed && !o.EverPaid {
		// One close per unpaid order, whatever trade is bound to it: a
		// trade read after the expiry must not make the close a new event.
		id = EventID("", o.OrderID, o.Status)
	}
	return PaymentEvent{
		V:          1,
		EventID:    id,
		OrderID:    o.OrderID,
		QRID:       o.QRID,
		TID:        o.TID,
		Status:     o.Status,
		Payment:    payment,
		UUID:       o.BuyerID,
		PayType:    o.PayType,
		OccurredAt: o.UpdatedAt.UTC(),
	}
}

// Decode parses and checks an event.
func Decode(data []byte) (PaymentEvent, error) {
	var e PaymentEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("decode payment event: %w", err)
	}
	if e.V != 1 || e.EventID == "" || e.OrderID == "" || e.Status == "" {
		return e, fmt.Errorf("decode payment event: missing v, event_id, order_id or status")
	}
	return e, nil
}

// Encode is the wire form.
func (e PaymentEvent) Encode() []byte {
	b, _ := json.Marshal(e) // cannot fail: plain fields
	return b
}
