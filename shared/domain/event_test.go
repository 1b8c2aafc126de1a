package domain

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func eventCases() []PaymentEvent {
	base := PaymentEvent{V: 1, EventID: "E20261130123456789012:TRADE_SUCCESS", OrderID: "order-000123",
		QRID: 123456789, TID: "E20261130123456789012", Status: StatusTradeSuccess, Payment: 1999,
		UUID: "buyer-42", PayType: "WEIXIN", OccurredAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	cases := []PaymentEvent{base, {}}
	odd := []string{"", "a b", `q"uote`, `back\slash`, "<html>&", "订单", "\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "tab\t"}
	for _, s := range odd {
		e := base
		e.OrderID, e.UUID, e.PayType = s, s, s
		cases = append(cases, e)
	}
	for _, t := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.FixedZone("CST", 8*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // JSON cannot carry it
		{},
	} {
		e := base
		e.OccurredAt = t
		cases = append(cases, e)
	}
	e := base
	e.QRID, e.Payment, e.V = -9223372036854775808, 9223372036854775807, -1
	return append(cases, e)
}

// Encode writes by hand what json.Marshal writes.
func TestEncodeIsJSONMarshal(t *testing.T) {
	for _, e := range eventCases() {
		want, _ := json.Marshal(e)
		if got := e.Encode(); !bytes.Equal(got, want) {
			t.Errorf("Encode = %s\n want %s", got, want)
		}
	}
}

// Decode gives what json.Unmarshal gives, for the canonical form and for
// every variation of it that the fast path leaves to encoding/json.
func TestDecodeIsJSONUnmarshal(t *testing.T) {
	inputs := [][]byte{
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":01,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"}`),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":1,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"} `),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":1,"tid":"","status":"S","payment":1e3,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"}`),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":99999999999999999999,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"}`),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":1,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":"2026-01-02 03:04:05Z"}`),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":1,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":null}`),
		[]byte(`{"event_id":"a","v":1,"order_id":"b","status":"S"}`),
		[]byte(`{"v":1,"event_id":"a\u0041","order_id":"b","qr_id":1,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"}`),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":-0,"tid":"","status":"S","payment":-12,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"}`),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":1,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"}}`),
		[]byte(`{"v":1,"event_id":"a","order_id":"b","qr_id":1,"tid":"","status":"S","payment":0,"uuid":"","pay_type":"","occurred_at":"2026-01-02T03:04:05Z"`),
		[]byte(`not json`),
		{},
	}
	for _, e := range eventCases() {
		inputs = append(inputs, e.Encode())
	}
	for _, in := range inputs {
		checkDecode(t, in)
	}
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	got, gotErr := Decode(in)
	var want PaymentEvent
	wantErr := json.Unmarshal(in, &want)
	if wantErr == nil && (want.V != 1 || want.EventID == "" || want.OrderID == "" || want.Status == "") {
		wantErr = errMissing
	}
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("Decode(%q) error %v, json.Unmarshal error %v", in, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) = %+v, json.Unmarshal = %+v", in, got, want)
	}
}

var errMissing = json.Unmarshal([]byte("x"), new(int))

func FuzzDecode(f *testing.F) {
	for _, e := range eventCases() {
		f.Add(e.Encode())
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecode(t, in) })
}
