package app

import (
	"log/slog"
	"net/http"

	"github.com/yzpay/yzpay/shared/merchant"
)

// DemoPush is what the demo merchant received.
type DemoPush struct {
	Push    merchant.Push
	EventID string
	Valid   bool
}

// demoMerchant stands in for the merchant's server in sandbox mode: it
// checks the sign as a merchant must and logs what arrived, so a newcomer
// sees the whole loop close.
func demoMerchant(secret string, log *slog.Logger, seen chan<- DemoPush) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := merchant.FromRequest(r)
		if err != nil {
			log.Warn("demo merchant: unreadable push", "err", err)
			http.Error(w, "bad push", http.StatusBadRequest)
			return
		}
		ok := p.Verify(secret)
		d := DemoPush{Push: p, EventID: r.Header.Get("X-Yzpay-Event-Id"), Valid: ok}
		select {
		case seen <- d:
		default: // nobody reads it; the log line is the demo's output
		}
		if !ok {
			log.Error("demo merchant: push with a WRONG sign refused", "orderId", p.OrderID, "tradeNo", p.TradeNo)
			http.Error(w, "bad sign", http.StatusUnauthorized)
			return
		}
		log.Info("demo merchant: signed push received", "orderId", p.OrderID, "status", p.Status,
			"payment_fen", p.Payment, "tradeNo", p.TradeNo, "uuid", p.UUID, "event_id", d.EventID,
			"attempt", r.Header.Get("X-Yzpay-Attempt"), "sign_ok", ok)
		_, _ = w.Write([]byte("success"))
	})
}
