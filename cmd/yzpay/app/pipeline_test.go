package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// A QR created through the API and paid in the sandbox reaches the merchant
// as a signed TRADE_SUCCESS push, and other internal consumers see the same
// events on yzpay.payment.status.>.
func TestPaymentReachesMerchant(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{endpoints: []string{m.srv.URL}})
	events := h.subscribe()

	q := h.createQR("order-1", 1234)
	if q.QRID == 0 || q.QRURL == "" || q.Status != "WAIT_BUYER_PAY" || q.Price != 1234 {
		t.Fatalf("unexpected QR answer %+v", q)
	}
	if len(q.QRCode) < 100 || q.QRCode[:22] != "data:image/png;base64," {
		t.Fatalf("qr_code is not a PNG data URI: %.40q", q.QRCode)
	}
	h.pay(q.QRID, "778899")

	eventually(t, 20*time.Second, "TRADE_SUCCESS push", func() bool { return len(m.find("order-1", "TRADE_SUCCESS")) > 0 })
	p := m.find("order-1", "TRADE_SUCCESS")[0]
	if p.Form["sign"] != wantSign(p.Form) {
		t.Errorf("sign %s does not match the documented formula (%s)", p.Form["sign"], wantSign(p.Form))
	}
	if p.Form["payment"] != "1234" {
		t.Errorf("payment = %q, want 1234 fen", p.Form["payment"])
	}
	if p.Form["uuid"] != "778899" {
		t.Errorf("uuid = %q, want the sandbox buyer 778899", p.Form["uuid"])
	}
	ord, err := h.app.Store.OrderByID(context.Background(), "order-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := ord.TID + "-" + strconv.FormatInt(q.QRID, 10); p.Form["tradeNo"] != want || ord.TID == "" {
		t.Errorf("tradeNo = %q, want %q", p.Form["tradeNo"], want)
	}
	if p.EventID != ord.TID+":TRADE_SUCCESS" || p.Attempt != 1 {
		t.Errorf("event id header %q attempt %d", p.EventID, p.Attempt)
	}
	ts, _ := strconv.ParseInt(p.Form["time"], 10, 64)
	if d := time.Since(time.Unix(ts, 0)); d < -2*time.Second || d > time.Minute {
		t.Errorf("time %q is not now", p.Form["time"])
	}

	// The order as the merchant API reports it.
	resp, body := h.do("GET", "/api/payment/orders/order-1", nil, true)
	if resp.StatusCode != 200 {
		t.Fatalf("get order: %d %s", resp.StatusCode, body)
	}
	if ord.Status != "TRADE_SUCCESS" || ord.Payment != 1234 || ord.BuyerID != "778899" {
		t.Errorf("stored order %+v", ord)
	}

	// The second subscriber saw every status the merchant was told of.
	eventually(t, 10*time.Second, "subscriber sees TRADE_SUCCESS", func() bool {
		for _, e := range events() {
			if e.OrderID == "order-1" && e.Status == "TRADE_SUCCESS" {
				return true
			}
		}
		return false
	})
	eventually(t, 10*time.Second, "pipeline idle", h.idle)
	seen := map[string]bool{}
	for _, e := range events() {
		seen[e.EventID] = true
	}
	for _, p := range m.pushes() {
		if !seen[p.EventID] {
			t.Errorf("merchant got event %s that the subscriber never saw", p.EventID)
		}
	}
	// Every push answered 2xx is timed from the gateway's receipt.
	if n, want := h.sampleCount("yzpay_push_to_delivery_seconds"), len(m.pushes()); n != uint64(want) {
		t.Errorf("yzpay_push_to_delivery_seconds counted %d deliveries, want %d", n, want)
	}
}

// The merchant answers 500 twice: the third attempt delivers, numbered 3.
func TestRetryUntilMerchantAnswers(t *testing.T) {
	m := newMerchant(t, func(r received, n int) int {
		if r.Form["status"] == "TRADE_SUCCESS" && n <= 2 {
			return 500
		}
		return 200
	})
	h := start(t, opts{endpoints: []string{m.srv.URL}})
	q := h.createQR("order-retry", 100)
	h.pay(q.QRID, "1")
	eventually(t, 20*time.Second, "third attempt", func() bool { return len(m.find("order-retry", "TRADE_SUCCESS")) >= 3 })
	eventually(t, 10*time.Second, "pipeline idle", h.idle)
	got := m.find("order-retry", "TRADE_SUCCESS")
	if len(got) != 3 {
		t.Fatalf("merchant called %d times for TRADE_SUCCESS, want 3", len(got))
	}
	for i, p := range got {
		if p.Attempt != i+1 {
			t.Errorf("call %d carried X-Yzpay-Attempt %d", i+1, p.Attempt)
		}
		if p.EventID != got[0].EventID {
			t.Errorf("event id changed across retries: %s vs %s", p.EventID, got[0].EventID)
		}
	}
	ds, err := h.app.Store.DeliveriesForEvent(context.Background(), got[0].EventID)
	if err != nil || len(ds) != 1 || ds[0].State() != domain.DeliveryDelivered || ds[0].Attempts != 3 {
		t.Fatalf("delivery record %+v err %v", ds, err)
	}
}

// Two endpoints, one failing: only the failing one is retried.
func TestOnlyFailingEndpointRetried(t *testing.T) {
	good := newMerchant(t, nil)
	bad := newMerchant(t, func(r received, n int) int {
		if n <= 2 {
			return 503
		}
		return 200
	})
	h := start(t, opts{endpoints: []string{good.srv.URL, bad.srv.URL}})
	q := h.createQR("order-two", 500)
	h.pay(q.QRID, "2")
	eventually(t, 20*time.Second, "bad endpoint delivered", func() bool { return len(bad.find("order-two", "TRADE_SUCCESS")) >= 3 })
	eventually(t, 10*time.Second, "pipeline idle", h.idle)
	perEvent := map[string]int{}
	for _, p := range good.find("order-two", "") {
		perEvent[p.EventID]++
	}
	for id, n := range perEvent {
		if n != 1 {
			t.Errorf("good endpoint called %d times for %s, want 1", n, id)
		}
	}
	if len(bad.find("order-two", "TRADE_SUCCESS")) != 3 {
		t.Errorf("bad endpoint called %d times for TRADE_SUCCESS, want 3", len(bad.find("order-two", "TRADE_SUCCESS")))
	}
}

// Youzan's duplicates (same msg_id, and a new msg_id for the same trade
// and status) produce one event and one push per endpoint.
func TestDuplicatePushesOneEvent(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{endpoints: []string{m.srv.URL}})
	q := h.createQR("order-dup", 700)
	tr, err := h.app.Sandbox.Pay(context.Background(), q.QRID, sandboxPay("3"))
	if err != nil {
		t.Fatal(err)
	}
	body1, hdr1, err := h.app.Sandbox.BuildPush(tr.TID, "trade_TradeSuccess")
	if err != nil {
		t.Fatal(err)
	}
	body2, hdr2, err := h.app.Sandbox.BuildPush(tr.TID, "trade_TradeSuccess")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		b []byte
		h http.Header
	}{{body1, hdr1}, {body1, hdr1}, {body2, hdr2}} {
		if code, out := h.postPush(p.b, p.h); code != 200 || out != `{"code":0,"msg":"success"}` {
			t.Fatalf("push answered %d %s", code, out)
		}
	}
	// The dedup key is the signed msg, which both builds share; msg_id is
	// unsigned (docs/security.md#push-authenticity).
	if n := h.streamMsgs(natsjs.WebhookStream); n != 1 {
		t.Errorf("webhook stream holds %d receipts, want 1 (the same signed msg stored once)", n)
	}
	eventually(t, 20*time.Second, "push delivered", func() bool { return len(m.find("order-dup", "TRADE_SUCCESS")) > 0 })
	eventually(t, 10*time.Second, "pipeline idle", h.idle)
	if n := len(m.pushes()); n != 1 {
		t.Errorf("merchant got %d pushes, want exactly 1", n)
	}
	if n := h.streamMsgs(natsjs.PaymentStream); n != 1 {
		t.Errorf("payment stream holds %d events, want 1", n)
	}
}

// A forged push is refused with 401 and nothing is published; a test
// message gets the success reply and nothing is published.
func TestBadSignatureAndTestMessage(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{endpoints: []string{m.srv.URL}})
	q := h.createQR("order-sig", 100)
	tr, err := h.app.Sandbox.Pay(context.Background(), q.QRID, sandboxPay("4"))
	if err != nil {
		t.Fatal(err)
	}
	body, hdr, err := h.app.Sandbox.BuildPush(tr.TID, "trade_TradeSuccess")
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), body...)
	forged[len(forged)-2] ^= 1 // any change to the signed bytes
	if code, out := h.postPush(forged, hdr); code != 401 {
		t.Errorf("forged push answered %d %s, want 401", code, out)
	}
	hdr.Set("Event-Sign", "0123456789abcdef0123456789abcdef")
	if code, _ := h.postPush(body, hdr); code != 401 {
		t.Errorf("wrong Event-Sign answered %d, want 401", code)
	}
	if code, out := h.postPush([]byte(`{"test":true}`), nil); code != 200 || out != `{"code":0,"msg":"success"}` {
		t.Errorf("test message answered %d %s", code, out)
	}
	if n := h.streamMsgs(natsjs.WebhookStream); n != 0 {
		t.Errorf("webhook stream holds %d receipts, want 0", n)
	}
}

// A late WAIT_BUYER_PAY after TRADE_SUCCESS moves nothing and pushes nothing.
func TestOutOfOrderPushes(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{endpoints: []string{m.srv.URL}})
	q := h.createQR("order-ooo", 300)
	tr, err := h.app.Sandbox.Pay(context.Background(), q.QRID, sandboxPay("5"))
	if err != nil {
		t.Fatal(err)
	}
	success, shdr, _ := h.app.Sandbox.BuildPush(tr.TID, "trade_TradeSuccess")
	create, chdr, _ := h.app.Sandbox.BuildPush(tr.TID, "trade_TradeCreate")
	if code, _ := h.postPush(success, shdr); code != 200 {
		t.Fatal("success push refused")
	}
	eventually(t, 20*time.Second, "TRADE_SUCCESS push", func() bool { return len(m.find("order-ooo", "TRADE_SUCCESS")) == 1 })
	if code, _ := h.postPush(create, chdr); code != 200 {
		t.Fatal("create push refused")
	}
	eventually(t, 10*time.Second, "pipeline idle", func() bool { return h.streamMsgs(natsjs.WebhookStream) == 2 && h.idle() })
	if got := m.find("order-ooo", "WAIT_BUYER_PAY"); len(got) != 0 {
		t.Errorf("WAIT_BUYER_PAY pushed after TRADE_SUCCESS: %+v", got)
	}
	o, _ := h.app.Store.OrderByID(context.Background(), "order-ooo")
	if o.Status != "TRADE_SUCCESS" {
		t.Errorf("order status %s, want TRADE_SUCCESS", o.Status)
	}
}

// Youzan's read side lags its pushes: trade.get still says TRADE_PAID when
// the TRADE_SUCCESS push arrives. The receipt is read again until trade.get
// catches up, so the merchant still hears TRADE_SUCCESS.
func TestReadSideLagsThePush(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{
		endpoints: []string{m.srv.URL},
		env:       map[string]string{"FETCH_RETRY_SCHEDULE": "100ms,200ms,400ms,800ms,1s,1s,1s"},
		sandbox:   sandbox.Config{Knobs: sandbox.Knobs{SuccessDelay: 1500 * time.Millisecond}},
	})
	q := h.createQR("order-lag", 400)
	tr, err := h.app.Sandbox.Pay(context.Background(), q.QRID, sandboxPay("6"))
	if err != nil {
		t.Fatal(err)
	}
	body, hdr, err := h.app.Sandbox.BuildPush(tr.TID, "trade_TradeSuccess")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := h.postPush(body, hdr); code != 200 {
		t.Fatalf("push answered %d %s", code, out)
	}
	eventually(t, 20*time.Second, "TRADE_SUCCESS after the read side caught up", func() bool {
		return len(m.find("order-lag", "TRADE_SUCCESS")) > 0
	})
}

// The store already holds TRADE_SUCCESS but its event never made it to
// JetStream (the process died between the commit and the PubAck). A later
// receipt whose trade.get answers an older status must publish the stored
// status, or the merchant never hears that the order was paid.
func TestStoredStatusRepublishedOnStaleRead(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{
		endpoints: []string{m.srv.URL},
		sandbox:   sandbox.Config{Knobs: sandbox.Knobs{SuccessDelay: time.Hour}},
	})
	q := h.createQR("order-stale", 500)
	tr, err := h.app.Sandbox.Pay(context.Background(), q.QRID, sandboxPay("7"))
	if err != nil {
		t.Fatal(err)
	}
	// The commit that "crashed" before its publish.
	if _, err := h.app.Store.RecordObservations(context.Background(), []domain.Observation{{
		QRID: q.QRID, TID: tr.TID, Status: domain.StatusTradeSuccess, Payment: 500, BuyerID: "7",
		PayType: "WEIXIN_DAIXIAO", PaidAt: time.Now(), ObservedAt: time.Now(),
	}}); err != nil {
		t.Fatal(err)
	}
	body, hdr, err := h.app.Sandbox.BuildPush(tr.TID, "trade_TradePaid")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := h.postPush(body, hdr); code != 200 {
		t.Fatalf("push answered %d %s", code, out)
	}
	eventually(t, 20*time.Second, "the stored TRADE_SUCCESS delivered", func() bool {
		return len(m.find("order-stale", "TRADE_SUCCESS")) > 0
	})
	if got := m.find("order-stale", "TRADE_PAID"); len(got) != 0 {
		t.Errorf("TRADE_PAID pushed after the order stood at TRADE_SUCCESS: %+v", got)
	}
}

// A buyer who pays another amount than the price: the notification carries
// what Youzan reported (never the price), the order says amount_mismatch and
// the mismatch is counted.
func TestAmountMismatchReportedAsPaid(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{endpoints: []string{m.srv.URL}})
	q := h.createQR("order-short", 1000)
	o := sandboxPay("8")
	o.Amount = 1
	tr, err := h.app.Sandbox.Pay(context.Background(), q.QRID, o)
	if err != nil {
		t.Fatal(err)
	}
	body, hdr, err := h.app.Sandbox.BuildPush(tr.TID, "trade_TradeSuccess")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := h.postPush(body, hdr); code != 200 {
		t.Fatalf("push answered %d %s", code, out)
	}
	eventually(t, 20*time.Second, "TRADE_SUCCESS", func() bool { return len(m.find("order-short", "TRADE_SUCCESS")) > 0 })
	got := m.find("order-short", "TRADE_SUCCESS")[0]
	if got.Form["payment"] != "1" {
		t.Errorf("notification payment = %q, want Youzan's 1 fen, never the price", got.Form["payment"])
	}
	resp, body := h.do("GET", "/api/payment/orders/order-short", nil, true)
	var ord struct {
		Payment        int64 `json:"payment"`
		Price          int64 `json:"price"`
		AmountMismatch bool  `json:"amount_mismatch"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &ord) != nil || !ord.AmountMismatch || ord.Payment != 1 || ord.Price != 1000 {
		t.Errorf("GET order: %d %s; want amount_mismatch true, payment 1, price 1000", resp.StatusCode, body)
	}
	if v := testutil.ToFloat64(h.app.Metrics.AmountMismatch); v != 1 {
		t.Errorf("yzpay_payment_amount_mismatch_total = %v, want 1", v)
	}
}
