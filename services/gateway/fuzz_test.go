package gateway

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/yzpay/yzpay/shared/domain"
)

// FuzzParseOrderRequest: the QR-create decoder never panics; it answers
// every body with either a valid order or one of its documented 4xx codes,
// and an accepted order is what the README promises.
func FuzzParseOrderRequest(f *testing.F) {
	for _, s := range []string{`{"name":"Coffee","price":100,"order_id":"demo-1"}`, `{"name":"x","price":1.5,"order_id":"a"}`,
		`{"name":"x","price":"100","order_id":"a"}`, `{"name":"a\u0000b","price":1,"order_id":"a"}`, `{}`, `[]`, `{"name":"x"} {}`,
		`{"name":" é ","price":10000000,"order_id":"A.b:c_d-1"}`, `{"name":"x","price":-1,"order_id":"a"}`, ``} {
		f.Add([]byte(s))
	}
	allowed := map[domain.Code]bool{domain.CodeMalformedJSON: true, domain.CodeInvalidName: true, domain.CodeInvalidPrice: true,
		domain.CodeInvalidOrderID: true, domain.CodeBodyTooLarge: true, domain.CodeBadBody: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/payment/qrcode", strings.NewReader(string(body)))
		cr, err := parseOrderRequest(httptest.NewRecorder(), r)
		o := cr.order
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || !allowed[de.Code] {
				t.Fatalf("error %v is not a documented 4xx code", err)
			}
			return
		}
		n := utf8.RuneCountInString(o.Name)
		if n < 1 || n > maxNameLen || !utf8.ValidString(o.Name) || strings.IndexFunc(o.Name, unicode.IsControl) >= 0 ||
			o.Name != strings.TrimSpace(o.Name) {
			t.Fatalf("accepted name %q", o.Name)
		}
		if o.Price < 1 || o.Price > maxPrice || !orderIDPattern.MatchString(o.OrderID) {
			t.Fatalf("accepted %+v", o)
		}
	})
}
