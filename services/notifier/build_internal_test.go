package notifier

import (
	"net/http"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
)

var benchEvent = domain.PaymentEvent{V: 1, EventID: "E20261130123456789012:TRADE_SUCCESS", OrderID: "order-000123",
	QRID: 123456789, TID: "E20261130123456789012", Status: domain.StatusTradeSuccess, Payment: 1999,
	UUID: "buyer-42", PayType: "WEIXIN", OccurredAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}

// BenchmarkBuild is the signing and encoding of one push, per format.
func BenchmarkBuild(b *testing.B) {
	now := time.Unix(1764504000, 0)
	for _, ep := range []*endpoint{
		{Endpoint: config.Endpoint{URL: "http://m/form", Format: config.FormatForm, Signing: config.SigningMD5, MD5Secret: "s3cret"}},
		{Endpoint: config.Endpoint{URL: "http://m/json", Format: config.FormatJSON, Signing: config.SigningMD5, MD5Secret: "s3cret"}},
	} {
		b.Run(ep.Format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = build(benchEvent, ep, now)
			}
		})
	}
}

// BenchmarkDecodeEncode is what a job costs in event (de)serialisation:
// the decode in admit and the encode of its attempt.
func BenchmarkDecodeEncode(b *testing.B) {
	data := benchEvent.Encode()
	b.ReportAllocs()
	for b.Loop() {
		ev, err := domain.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = ev.Encode()
	}
}

// send assigns these header names directly, so they must be in canonical form.
func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, k := range []string{HeaderEventID, HeaderAttempt, HeaderSandbox} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}
