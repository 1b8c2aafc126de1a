package domain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
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
	e, ok := decodeCanonical(data)
	if !ok {
		// Anything but the exact form Encode writes (another key order,
		// spaces, escapes, …) goes through encoding/json, as it always did.
		e = PaymentEvent{}
		if err := json.Unmarshal(data, &e); err != nil {
			return e, fmt.Errorf("decode payment event: %w", err)
		}
	}
	if e.V != 1 || e.EventID == "" || e.OrderID == "" || e.Status == "" {
		return e, fmt.Errorf("decode payment event: missing v, event_id, order_id or status")
	}
	return e, nil
}

// Encode is the wire form: the bytes of json.Marshal(e), written without
// reflection (every consumer and the notifier's attempt log pay for it).
func (e PaymentEvent) Encode() []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = appendJSONString(append(b, `,"event_id":`...), e.EventID)
	b = appendJSONString(append(b, `,"order_id":`...), e.OrderID)
	b = strconv.AppendInt(append(b, `,"qr_id":`...), e.QRID, 10)
	b = appendJSONString(append(b, `,"tid":`...), e.TID)
	b = appendJSONString(append(b, `,"status":`...), e.Status)
	b = strconv.AppendInt(append(b, `,"payment":`...), e.Payment, 10)
	b = appendJSONString(append(b, `,"uuid":`...), e.UUID)
	b = appendJSONString(append(b, `,"pay_type":`...), e.PayType)
	b = append(b, `,"occurred_at":"`...)
	// What time.Time's MarshalJSON writes between its quotes.
	b, err := e.OccurredAt.AppendText(b)
	if err != nil {
		// A time JSON cannot carry (a year past 9999): json.Marshal fails
		// on it too, and its bytes are nil.
		return nil
	}
	return append(b, `"}`...)
}

// appendJSONString appends s as encoding/json writes it: the usual id or
// status (printable ASCII, nothing escaped or HTML-escaped) as is, anything
// else through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeCanonical parses data if it is exactly what Encode writes (the
// fields in order, no spaces, strings without escapes): the same event
// json.Unmarshal would give. false: not that form, use json.Unmarshal.
func decodeCanonical(data []byte) (PaymentEvent, bool) {
	var e PaymentEvent
	d := canon{b: data}
	v, ok := d.int(`{"v":`)
	e.V = int(v)
	e.EventID, ok = d.str(ok, `,"event_id":`)
	e.OrderID, ok = d.str(ok, `,"order_id":`)
	if ok {
		e.QRID, ok = d.int(`,"qr_id":`)
	}
	e.TID, ok = d.str(ok, `,"tid":`)
	e.Status, ok = d.str(ok, `,"status":`)
	if ok {
		e.Payment, ok = d.int(`,"payment":`)
	}
	e.UUID, ok = d.str(ok, `,"uuid":`)
	e.PayType, ok = d.str(ok, `,"pay_type":`)
	if !ok || !d.key(`,"occurred_at":`) {
		return PaymentEvent{}, false
	}
	raw, ok := d.quoted()
	if !ok || string(d.b) != "}" || e.OccurredAt.UnmarshalJSON(raw) != nil {
		return PaymentEvent{}, false
	}
	return e, true
}

// canon reads the canonical event form from the front of b.
type canon struct{ b []byte }

func (d *canon) key(k string) bool {
	if len(d.b) < len(k) || string(d.b[:len(k)]) != k {
		return false
	}
	d.b = d.b[len(k):]
	return true
}

// int reads key and a JSON integer that fits in an int64.
func (d *canon) int(k string) (int64, bool) {
	if !d.key(k) {
		return 0, false
	}
	i := 0
	if i < len(d.b) && d.b[i] == '-' {
		i++
	}
	start := i
	for i < len(d.b) && '0' <= d.b[i] && d.b[i] <= '9' {
		i++
	}
	if i == start || d.b[start] == '0' && i > start+1 {
		return 0, false // no digits, or a leading zero
	}
	n, err := strconv.ParseInt(string(d.b[:i]), 10, 64)
	if err != nil || n != int64(int(n)) {
		return 0, false
	}
	d.b = d.b[i:]
	return n, true
}

// quoted returns the next string with its quotes, if it needs no
// unescaping: no backslash, no control character, valid UTF-8 (which
// json.Unmarshal would repair).
func (d *canon) quoted() ([]byte, bool) {
	if len(d.b) == 0 || d.b[0] != '"' {
		return nil, false
	}
	for i := 1; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			raw := d.b[:i+1]
			if !utf8.Valid(raw) {
				return nil, false
			}
			d.b = d.b[i+1:]
			return raw, true
		case c < 0x20 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// str reads key and a plain string, if ok so far.
func (d *canon) str(ok bool, k string) (string, bool) {
	if !ok || !d.key(k) {
		return "", false
	}
	raw, ok := d.quoted()
	if !ok {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}
