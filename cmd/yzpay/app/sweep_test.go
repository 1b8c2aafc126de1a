package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// Youzan never pushes (the sandbox drops every push): reconciliation finds
// the paid trade and the merchant still hears TRADE_SUCCESS.
func TestReconciliationCatchesMissingPush(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{
		endpoints: []string{m.srv.URL},
		env:       map[string]string{"RECONCILE_INTERVAL": "200ms"},
		sandbox:   sandbox.Config{Knobs: sandbox.Knobs{DropPushes: true}},
	})
	q := h.createQR("order-recon", 999)
	h.pay(q.QRID, "42")
	eventually(t, 20*time.Second, "TRADE_SUCCESS through reconciliation", func() bool {
		return len(m.find("order-recon", "TRADE_SUCCESS")) > 0
	})
	if st := h.app.Sandbox.Stats(); st.PushesSent != 0 {
		t.Fatalf("sandbox sent %d pushes; the test needs none", st.PushesSent)
	}
	p := m.find("order-recon", "TRADE_SUCCESS")[0]
	if p.Form["payment"] != "999" || p.Form["uuid"] != "42" || p.Form["sign"] != wantSign(p.Form) {
		t.Errorf("push %+v", p.Form)
	}
}

// An order unpaid past ORDER_TTL is closed and the merchant told (payment
// 0); a payment that comes anyway still reaches the merchant.
func TestExpiryThenLatePayment(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{
		endpoints: []string{m.srv.URL},
		env:       map[string]string{"RECONCILE_INTERVAL": "100ms", "ORDER_TTL": "600ms"},
	})
	q := h.createQR("order-exp", 250)
	eventually(t, 20*time.Second, "TRADE_CLOSED push", func() bool { return len(m.find("order-exp", "TRADE_CLOSED")) > 0 })
	c := m.find("order-exp", "TRADE_CLOSED")[0]
	if c.Form["payment"] != "0" || c.Form["sign"] != wantSign(c.Form) {
		t.Errorf("close push %+v", c.Form)
	}
	o, err := h.app.Store.OrderByID(context.Background(), "order-exp")
	if err != nil || o.Status != "TRADE_CLOSED" {
		t.Fatalf("order after expiry: %+v %v", o, err)
	}

	h.pay(q.QRID, "77")
	eventually(t, 20*time.Second, "late TRADE_SUCCESS push", func() bool { return len(m.find("order-exp", "TRADE_SUCCESS")) > 0 })
	o, _ = h.app.Store.OrderByID(context.Background(), "order-exp")
	if o.Status != "TRADE_SUCCESS" || o.Payment != 250 {
		t.Errorf("order after late payment: status %s payment %d", o.Status, o.Payment)
	}
	if p := m.find("order-exp", "TRADE_SUCCESS")[0]; p.Form["payment"] != "250" {
		t.Errorf("late payment push carries payment %s", p.Form["payment"])
	}
}

// The buyer pays an expired order's QR and Youzan's push is lost (the
// sandbox drops every push): the late-payment reconciliation, which keeps
// asking about closed unpaid orders for RECONCILE_LATE_WINDOW, finds the
// payment and the merchant gets TRADE_SUCCESS.
func TestLatePaymentWithLostPushIsFound(t *testing.T) {
	m := newMerchant(t, nil)
	h := start(t, opts{
		endpoints: []string{m.srv.URL},
		env: map[string]string{"RECONCILE_INTERVAL": "100ms", "ORDER_TTL": "600ms",
			"RECONCILE_LATE_INTERVAL": "2s", "RECONCILE_LATE_WINDOW": "1h"},
		sandbox: sandbox.Config{Knobs: sandbox.Knobs{DropPushes: true}},
	})
	q := h.createQR("order-late", 250)
	eventually(t, 20*time.Second, "TRADE_CLOSED push", func() bool { return len(m.find("order-late", "TRADE_CLOSED")) > 0 })

	paid := time.Now()
	h.pay(q.QRID, "77")
	eventually(t, 20*time.Second, "late TRADE_SUCCESS push", func() bool { return len(m.find("order-late", "TRADE_SUCCESS")) > 0 })
	t.Logf("late payment reached the merchant %s after it was made (RECONCILE_LATE_INTERVAL 2s)", time.Since(paid).Round(time.Millisecond))
	if st := h.app.Sandbox.Stats(); st.PushesSent != 0 {
		t.Fatalf("sandbox sent %d pushes; the test needs none", st.PushesSent)
	}
	p := m.find("order-late", "TRADE_SUCCESS")[0]
	if p.Form["payment"] != "250" || p.Form["uuid"] != "77" || p.Form["sign"] != wantSign(p.Form) {
		t.Errorf("late payment push %+v", p.Form)
	}
	o, err := h.app.Store.OrderByID(context.Background(), "order-late")
	if err != nil || o.Status != "TRADE_SUCCESS" || o.Payment != 250 {
		t.Errorf("order after the late payment: %+v %v", o, err)
	}
}
