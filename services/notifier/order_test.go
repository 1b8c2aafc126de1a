package notifier_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/replay"
)

// failFirst is a merchant that answers 500 to its first request only.
func failFirst(n int) int {
	if n == 1 {
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

// slowRetry leaves the first retry well after a newer event is delivered,
// which is the race the ordering rule is about.
func slowRetry(c *config.Notifier) {
	c.RetrySchedule = []time.Duration{2 * time.Second, 2 * time.Second}
}

// checkOlderSuperseded publishes older, lets its first attempt fail,
// publishes newer, and checks that the merchant never sees older after
// newer: older's retry is recorded as superseded and not sent.
func checkOlderSuperseded(t *testing.T, older, newer domain.PaymentEvent) {
	t.Helper()
	e := newEnv(t)
	m := newMerchant(t, failFirst)
	met := e.start([]string{m.url}, slowRetry)

	e.publish(older)
	eventually(t, "the first attempt of the older event", func() bool { return len(m.received()) == 1 })
	e.publish(newer)
	eventually(t, "the newer event to be delivered and the older one superseded", func() bool {
		return e.deliveries(newer.EventID)[m.url].State() == domain.DeliveryDelivered &&
			e.deliveries(older.EventID)[m.url].State() == domain.DeliverySuperseded && e.settled()
	})

	hits := m.received()
	if len(hits) != 2 || hits[0].eventID != older.EventID || hits[1].eventID != newer.EventID {
		for _, h := range hits {
			t.Logf("merchant got %s (%s) attempt %d", h.push.Status, h.eventID, h.attempt)
		}
		t.Fatalf("merchant got %d pushes, want the failed %s and then %s only", len(hits), older.Status, newer.Status)
	}
	checkPush(t, hits[1], newer, 1)
	d := e.deliveries(older.EventID)[m.url]
	if d.Attempts != 1 || d.LastHTTPStatus != 500 || d.SupersededAt.IsZero() || !d.NextAttemptAt.IsZero() {
		t.Errorf("superseded delivery recorded as %+v", d)
	}
	if got := testutil.ToFloat64(met.Deliveries.WithLabelValues(domain.DeliverySuperseded)); got != 1 {
		t.Errorf("yzpay_deliveries_total{result=superseded} = %v, want 1", got)
	}
	t.Logf("older %s: %s", older.Status, d.LastError)

	// An operator's replay would show the merchant the order going back.
	_, err := replay.Replayer{Store: e.store, JS: e.js}.Replay(t.Context(), older.EventID, "")
	if !errors.Is(err, replay.ErrSuperseded) {
		t.Errorf("replay of a superseded delivery: %v, want it refused", err)
	}
}

func TestWaitSellerSendGoodsAfterTradeSuccessIsSuperseded(t *testing.T) {
	checkOlderSuperseded(t, event("T1", "o-1", domain.StatusWaitSellerSendGoods), event("T1", "o-1", domain.StatusTradeSuccess))
}

func TestExpiryCloseAfterTradeSuccessIsSuperseded(t *testing.T) {
	// The order expires unpaid (event id order:o-1:TRADE_CLOSED, payment 0),
	// then the buyer pays the QR anyway.
	closed := event("", "o-1", domain.StatusTradeClosed)
	if closed.EventID != "order:o-1:TRADE_CLOSED" || closed.Payment != 0 {
		t.Fatalf("expiry event %+v", closed)
	}
	checkOlderSuperseded(t, closed, event("T1", "o-1", domain.StatusTradeSuccess))
}

// An older event the store has already moved past is genuine, and is sent
// while nothing newer has been delivered: superseding only ever drops what
// would go backwards.
func TestOlderEventIsSentWhileNothingNewerIsDelivered(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.start([]string{m.url}, nil)
	wssg := event("T1", "o-1", domain.StatusWaitSellerSendGoods)
	success := event("T1", "o-1", domain.StatusTradeSuccess)
	e.reach(wssg)
	e.reach(success) // the store is further along when WSSG is handled
	e.publishAs(wssg.EventID, wssg.Encode(), natsjs.StatusSubject(wssg.Status))
	eventually(t, "the older event delivered", func() bool { return len(m.received()) == 1 && e.settled() })
	e.publishAs(success.EventID, success.Encode(), natsjs.StatusSubject(success.Status))
	eventually(t, "the newer event delivered", func() bool { return len(m.received()) == 2 && e.settled() })
	hits := m.received()
	checkPush(t, hits[0], wssg, 1)
	checkPush(t, hits[1], success, 1)
}

// Events of one order that the notifier handles at the same time, in
// concurrent batches, never reach the merchant newest first.
func TestConcurrentEventsOfOneOrderStayInOrder(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.start([]string{m.url}, func(c *config.Notifier) { c.Batch = 1 }) // one event per batch: batches run concurrently
	statuses := []string{domain.StatusWaitBuyerPay, domain.StatusTradePaid, domain.StatusWaitSellerSendGoods,
		domain.StatusWaitBuyerConfirmGoods, domain.StatusTradeBuyerSigned, domain.StatusTradeSuccess}
	var evs []domain.PaymentEvent
	for _, st := range statuses {
		ev := event("T1", "o-1", st)
		e.reach(ev)
		evs = append(evs, ev)
	}
	for _, ev := range evs {
		e.publishAs(ev.EventID, ev.Encode(), natsjs.StatusSubject(ev.Status))
	}
	eventually(t, "every event delivered or superseded", func() bool {
		if !e.settled() {
			return false
		}
		for _, ev := range evs {
			if st := e.deliveries(ev.EventID)[m.url].State(); st != domain.DeliveryDelivered && st != domain.DeliverySuperseded {
				return false
			}
		}
		return true
	})
	last := 0
	for _, h := range m.received() {
		p := domain.Position(h.push.Status, false)
		if p < last {
			t.Errorf("merchant got %s after a newer status", h.push.Status)
		}
		last = p
	}
	if last != domain.Position(domain.StatusTradeSuccess, false) {
		t.Errorf("TRADE_SUCCESS was not the last status the merchant got")
	}
	t.Logf("merchant got %d of %d statuses, in order", len(m.received()), len(evs))
}

// Anything that can publish on yzpay.payment.> could have the notifier sign
// a payment that never happened; events the store does not back are
// terminated unsigned and counted.
func TestForgedEventsAreRefused(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	met := e.start([]string{m.url}, nil)

	// o-1 is paid and its merchant told; o-2 and o-3 exist, unpaid and paid.
	paid1 := event("T1", "o-1", domain.StatusTradeSuccess)
	e.publish(paid1)
	eventually(t, "the genuine event", func() bool { return len(m.received()) == 1 && e.settled() })
	unpaid2 := event("T2", "o-2", domain.StatusWaitBuyerPay)
	unpaid2.QRID = 502
	e.reach(unpaid2)
	paid3 := event("T3", "o-3", domain.StatusTradeSuccess)
	paid3.QRID = 503
	e.reach(paid3)

	forged := 0
	forge := func(ev domain.PaymentEvent, change func(*domain.PaymentEvent)) {
		change(&ev)
		forged++
		e.publishAs(fmt.Sprintf("forged-%d", forged), ev.Encode(), natsjs.StatusSubject(ev.Status))
	}
	same := func(*domain.PaymentEvent) {}
	forge(event("T9", "o-unknown", domain.StatusTradeSuccess), same)                                    // no such order
	forge(event("T2", "o-2", domain.StatusTradeSuccess), same)                                          // o-2 was never paid
	forge(paid3, func(ev *domain.PaymentEvent) { ev.Payment = 1 })                                      // wrong payment
	forge(event("T1", "o-1", domain.StatusTradePaid), func(ev *domain.PaymentEvent) { ev.Payment = 1 }) // older, wrong payment
	forge(paid3, func(ev *domain.PaymentEvent) { ev.TID, ev.EventID = "T8", "T8:TRADE_SUCCESS" })       // another trade

	eventually(t, "the forged events to be refused", func() bool {
		return testutil.ToFloat64(met.ForgedEvents.WithLabelValues("unknown_order")) == 1 &&
			testutil.ToFloat64(met.ForgedEvents.WithLabelValues("mismatch")) == 4 && e.settled()
	})
	// The genuine o-3 event still goes out after its forgery was refused.
	e.publish(paid3)
	eventually(t, "the genuine o-3 event", func() bool { return len(m.received()) == 2 && e.settled() })
	hits := m.received()
	checkPush(t, hits[0], paid1, 1)
	if p := hits[1].push; p.OrderID != "o-3" || p.Payment != 100 || p.TradeNo != "T3-503" || !p.Verify(secret) {
		t.Errorf("o-3 push %+v", p)
	}
	if ds := e.deliveries("T2:TRADE_SUCCESS"); len(ds) != 0 {
		t.Errorf("a forged event left deliveries: %+v", ds)
	}
}
