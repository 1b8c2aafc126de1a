package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan/push"
)

// floodPush is a correctly signed trade_TradePaid push (both signature
// generations, made with the sandbox's key) for a tid Youzan does not know.
func floodPush(t *testing.T, clientID, secret, kdtID, tid string, n int) ([]byte, http.Header) {
	t.Helper()
	inner, _ := json.Marshal(map[string]any{"tid": tid, "status": domain.StatusTradePaid, "update_time": "2026-01-01 00:00:00"})
	msg := url.QueryEscape(string(inner))
	body, err := json.Marshal(map[string]any{
		"client_id": clientID, "id": tid, "kdt_id": kdtID, "type": "trade_TradePaid", "status": domain.StatusTradePaid,
		"msg": msg, "msg_id": fmt.Sprintf("flood-%08d", n), "version": 1767225600, "sendCount": 0, "mode": 1,
		"sign": push.BodySign(clientID, msg, secret),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Event-Sign", push.EventSign(clientID, body, secret))
	h.Set("Event-Type", "trade_TradePaid")
	h.Set("Client-Id", clientID)
	return body, h
}

// Thousands of signed pushes for trades Youzan does not know neither hold
// the receipt consumer (its pending count falls back to zero: they are
// parked in the store, not NAK'd) nor delay a real payment's notification;
// they are given up after FETCH_GIVE_UP_AFTER and listed as dead receipts
// (docs/security.md, "Receipts for unknown trades").
func TestFloodOfUnknownTradesDoesNotDelayARealPayment(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	const flood = 5000
	const giveUp = 2 * time.Second
	m := newMerchant(t, nil)
	h := start(t, opts{endpoints: []string{m.srv.URL}, env: map[string]string{
		"FETCH_RETRY_SCHEDULE": "1s,2s",
		"FETCH_GIVE_UP_AFTER":  giveUp.String(),
	}})
	q := h.createQR("real-1", 100)
	sc := h.app.Sandbox.Config()

	// The flood: 16 senders, every push accepted by the gateway.
	t0 := time.Now()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var next, refused atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				if n > flood {
					return
				}
				body, hdr := floodPush(t, sc.ClientID, sc.ClientSecret, sc.KdtID, fmt.Sprintf("E%023d", 90000000000000+n), n)
				req, _ := http.NewRequest(http.MethodPost, h.app.URL+"/api/status", bytes.NewReader(body))
				req.Header = hdr
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					refused.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	sent := time.Since(t0)
	if n := refused.Load(); n != 0 {
		t.Fatalf("the gateway refused %d of %d well-formed signed pushes", n, flood)
	}

	// The real payment, while the flood is being parked and retried.
	paidAt := time.Now()
	h.pay(q.QRID, "4242")
	eventually(t, 20*time.Second, "the real payment's notification", func() bool { return len(m.find("real-1", "")) > 0 })
	delay := m.find("real-1", "")[0].At.Sub(paidAt)
	t.Logf("flood of %d unknown-trade pushes sent in %s; real payment notified %s after it was paid", flood, sent.Round(time.Millisecond), delay.Round(time.Millisecond))
	if got := m.find("real-1", "")[0].Form["status"]; !domain.IsPaid(got) {
		t.Errorf("first notification of the real payment has status %s", got)
	}
	if delay > 2*time.Second {
		t.Errorf("the real payment reached the merchant %s after it was paid, want within 2s despite the flood", delay)
	}

	// Nothing of the flood stays in the consumer: it falls back to zero
	// pending and ack-pending.
	pendingSince := time.Now()
	eventually(t, 30*time.Second, "the receipt consumer's pending count to fall to zero", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := h.app.JS.Consumer(ctx, natsjs.WebhookStream, natsjs.TradefetcherDurable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	t.Logf("receipt consumer pending and ack-pending at zero %s after the real payment's notification (%s after the flood began)",
		time.Since(pendingSince).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

	// Every flood receipt was parked, none lost; they are given up after
	// FETCH_GIVE_UP_AFTER (the retrier works through them at its own pace,
	// 4 trade.get calls at a time) and listed as dead.
	if n := testutilCounter(t, h, "yzpay_receipts_parked_total"); n != flood {
		t.Errorf("yzpay_receipts_parked_total = %v, want %d", n, flood)
	}
	st := h.app.Store
	eventually(t, 30*time.Second, "flood receipts to be given up", func() bool {
		rs, err := st.ListReceipts(context.Background(), store.ReceiptFilter{State: domain.ReceiptDead, Limit: 1})
		return err == nil && len(rs) == 1 && rs[0].Attempts >= 2
	})
	dead := testutilCounter(t, h, "yzpay_receipts_given_up_total")
	t.Logf("%v of %d flood receipts given up %s after the flood began (FETCH_GIVE_UP_AFTER=%s)", dead, flood,
		time.Since(t0).Round(time.Millisecond), giveUp)
	if evs := len(m.pushes()); evs != len(m.find("real-1", "")) {
		t.Errorf("the merchant got %d notifications, %d of them for the real order: the flood must cause none", evs, len(m.find("real-1", "")))
	}
}

// testutilCounter is the value of the counter name (summed over labels).
func testutilCounter(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.app.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
