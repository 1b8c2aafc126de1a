package merchant_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/yzpay/yzpay/shared/merchant"
)

// A merchant's endpoint for yzpay pushes: read the push, check the signature
// with the shared SELF_SECRET, and answer 200 once the order is updated so that
// yzpay stops retrying.
func Example() {
	const selfSecret = "example_self_secret"

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := merchant.FromRequest(r)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if !p.Verify(selfSecret) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		// Pushes are retried and may repeat: make this idempotent per
		// (OrderID, Status), and act on paid statuses only.
		fmt.Printf("order %s: %s, %d fen\n", p.OrderID, p.Status, p.Payment)
		w.WriteHeader(http.StatusOK)
	})

	// What yzpay sends (form-encoded by default).
	push := merchant.New(merchant.Fields{
		Time:    "1517457474",
		TradeNo: "E20180201105656001353613-6377801",
		OrderID: "1515174485676262",
		Payment: 10,
		Status:  "TRADE_SUCCESS",
	}, "buyer-42", selfSecret)
	req := httptest.NewRequest(http.MethodPost, "/yzpay/notify", strings.NewReader(push.Form().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code, push.Sign)
	// Output:
	// order 1515174485676262: TRADE_SUCCESS, 10 fen
	// 200 eb073182435cd0820b0d2f0627aa8777
}
