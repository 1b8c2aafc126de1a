package notifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
)

// checkPush asserts that h is ev, signed with the merchant's secret.
func checkPush(t *testing.T, h hit, ev domain.PaymentEvent, attempt int) {
	t.Helper()
	p := h.push
	if p.TradeNo != ev.TID+"-501" || p.OrderID != ev.OrderID || p.Payment != ev.Payment || p.Status != ev.Status || p.UUID != ev.UUID {
		t.Errorf("push %+v does not carry event %+v", p, ev)
	}
	if !p.Verify(secret) {
		t.Errorf("push does not verify with SELF_SECRET: %+v", p)
	}
	if p.Verify("another secret") {
		t.Error("push verifies with any secret")
	}
	sec, err := strconv.ParseInt(p.Time, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("push time %q is not the current unix time", p.Time)
	}
	if h.eventID != ev.EventID || h.attempt != attempt {
		t.Errorf("headers: event id %q attempt %d, want %q %d", h.eventID, h.attempt, ev.EventID, attempt)
	}
}

func TestEventIsDeliveredSignedAndRecorded(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.start([]string{m.url}, nil)
	ev := event("T1", "o-1", domain.StatusTradePaid)
	e.publish(ev)

	eventually(t, "the event to be delivered and acked", func() bool { return len(m.received()) == 1 && e.settled() })
	h := m.received()[0]
	checkPush(t, h, ev, 1)
	if h.contentType != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q, want the form the original service sent", h.contentType)
	}
	d := e.deliveries(ev.EventID)[m.url]
	if d.State() != domain.DeliveryDelivered || d.Attempts != 1 || d.LastHTTPStatus != 200 || d.OrderID != "o-1" {
		t.Errorf("delivery recorded as %+v", d)
	}
	if got, err := domain.Decode(d.Event); err != nil || got != ev {
		t.Errorf("recorded event %s (%v): an operator could not replay it", d.Event, err)
	}
}

func TestJSONFormat(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.start([]string{m.url}, func(c *config.Notifier) { c.Format = config.FormatJSON })
	ev := event("T1", "o-1", domain.StatusTradeSuccess)
	e.publish(ev)

	eventually(t, "the event to be delivered", func() bool { return len(m.received()) == 1 })
	h := m.received()[0]
	checkPush(t, h, ev, 1)
	if h.contentType != "application/json" {
		t.Errorf("Content-Type %q", h.contentType)
	}
	// The original README's shape: payment a number, time a string.
	var raw map[string]any
	if err := json.Unmarshal(h.body, &raw); err != nil {
		t.Fatalf("body is not JSON: %s", h.body)
	}
	if _, ok := raw["payment"].(float64); !ok {
		t.Errorf("payment is %T, want a number: %s", raw["payment"], h.body)
	}
	if _, ok := raw["time"].(string); !ok {
		t.Errorf("time is %T, want a string: %s", raw["time"], h.body)
	}
	for _, k := range []string{"tradeNo", "orderId", "status", "uuid", "sign"} {
		if _, ok := raw[k].(string); !ok {
			t.Errorf("field %s missing: %s", k, h.body)
		}
	}
}

func TestFailingMerchantIsRetriedOnTheScheduleAndRecorded(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	e.start([]string{m.url}, nil)
	ev := event("T1", "o-1", domain.StatusTradePaid)
	published := time.Now()
	e.publish(ev)

	// While the merchant fails, the store shows why and when it is tried next.
	eventually(t, "the failure to be recorded", func() bool {
		d, ok := e.deliveries(ev.EventID)[m.url]
		return ok && d.LastHTTPStatus == 500
	})
	d := e.deliveries(ev.EventID)[m.url]
	if d.State() != domain.DeliveryPending || !strings.Contains(d.LastError, "HTTP 500") || d.NextAttemptAt.IsZero() {
		t.Errorf("failing delivery recorded as %+v", d)
	}

	eventually(t, "delivery on the third attempt", func() bool { return len(m.received()) == 3 && e.settled() })
	hits := m.received()
	for i, h := range hits {
		checkPush(t, h, ev, i+1)
	}
	// A retry is due its schedule step after the failed attempt began, so
	// attempt n comes at least the sum of the first n-1 steps after the
	// event was published.
	var due time.Duration
	for i, step := range retrySchedule {
		due += step
		if at := hits[i+1].at.Sub(published); at < due {
			t.Errorf("attempt %d came %s after the event, want at least %s", i+2, at, due)
		}
	}
	d = e.deliveries(ev.EventID)[m.url]
	if d.State() != domain.DeliveryDelivered || d.Attempts != 3 || d.LastHTTPStatus != 200 {
		t.Errorf("delivery recorded as %+v", d)
	}
}

func TestMerchantIsGivenUpAfterTheSchedule(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, func(int) int { return http.StatusServiceUnavailable })
	e.start([]string{m.url}, nil)
	ev := event("T1", "o-1", domain.StatusTradePaid)
	e.publish(ev)

	// The first attempt and one per schedule step; then the event is done
	// with, so the merchant hears no more of it.
	eventually(t, "the event to be given up", func() bool {
		return !e.deliveries(ev.EventID)[m.url].GivenUpAt.IsZero() && e.settled()
	})
	if n := len(m.received()); n != len(retrySchedule)+1 {
		t.Errorf("%d attempts, want %d", n, len(retrySchedule)+1)
	}
	d := e.deliveries(ev.EventID)[m.url]
	if d.State() != domain.DeliveryFailed || d.GivenUpAt.IsZero() || d.Attempts != len(retrySchedule)+1 ||
		d.LastHTTPStatus != 503 || !strings.Contains(d.LastError, "HTTP 503") {
		t.Errorf("given-up delivery recorded as %+v", d)
	}
}

func TestOnlyTheConfiguredStatusesArePushed(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.start([]string{m.url}, func(c *config.Notifier) {
		c.Statuses = map[string]bool{domain.StatusTradeSuccess: true}
	})
	paid := event("T1", "o-1", domain.StatusTradePaid)
	success := event("T1", "o-1", domain.StatusTradeSuccess)
	e.publish(paid)
	e.publish(success)

	eventually(t, "both events handled", func() bool { return len(m.received()) >= 1 && e.settled() })
	var got []string
	for _, h := range m.received() {
		got = append(got, h.push.Status)
	}
	if len(got) != 1 || got[0] != domain.StatusTradeSuccess {
		t.Errorf("merchant received %v, want only TRADE_SUCCESS", got)
	}
	if ds := e.deliveries(paid.EventID); len(ds) != 0 {
		t.Errorf("a delivery was recorded for a filtered status: %+v", ds)
	}
}

func TestEndpointsAreTrackedSeparately(t *testing.T) {
	e := newEnv(t)
	good := newMerchant(t, nil)
	flaky := newMerchant(t, func(n int) int {
		if n == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	e.start([]string{good.url, flaky.url}, nil)
	ev := event("T1", "o-1", domain.StatusTradePaid)
	e.publish(ev)

	eventually(t, "the flaky endpoint's second attempt", func() bool { return len(flaky.received()) == 2 && e.settled() })
	if n := len(good.received()); n != 1 {
		t.Errorf("the endpoint that answered 200 was called %d times for one event", n)
	}
	ds := e.deliveries(ev.EventID)
	if ds[good.url].Attempts != 1 || ds[flaky.url].Attempts != 2 ||
		ds[good.url].State() != domain.DeliveryDelivered || ds[flaky.url].State() != domain.DeliveryDelivered {
		t.Errorf("deliveries %+v", ds)
	}
}

func TestEventSeenAgainIsNotPushedAgain(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.start([]string{m.url}, nil)
	ev := event("", "o-1", domain.StatusTradeClosed)
	e.publish(ev)
	eventually(t, "the first delivery", func() bool { return len(m.received()) == 1 && e.settled() })

	// The same event again under another message id (a sweeper republishing
	// a close after the duplicate window, say): the store knows it is done.
	e.publishAs("again", ev.Encode(), natsjs.StatusSubject(ev.Status))
	eventually(t, "the copy to be handled", e.settled)
	if n := len(m.received()); n != 1 {
		t.Errorf("merchant told %d times about one event", n)
	}
}

func TestUnreadableEventDoesNotHoldUpTheRest(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.start([]string{m.url}, nil)
	e.publishAs("junk", []byte(`{"v":2}`), natsjs.StatusSubject(domain.StatusTradePaid))
	ev := event("T1", "o-1", domain.StatusTradePaid)
	e.publish(ev)

	eventually(t, "both events handled", func() bool { return len(m.received()) == 1 && e.settled() })
	if h := m.received()[0]; h.eventID != ev.EventID {
		t.Errorf("merchant received %q", h.eventID)
	}
}

// orderStateFails is the real store, except that its first reads of a
// batch's state fail, as a store that went away would.
type orderStateFails struct {
	store.Store
	left atomic.Int32
}

func (s *orderStateFails) OrderState(ctx context.Context, ids []string) (store.OrderState, error) {
	if s.left.Add(-1) >= 0 {
		return store.OrderState{}, errors.New("store went away")
	}
	return s.Store.OrderState(ctx, ids)
}

// While the store cannot be read the notifier signs nothing and lets the
// event come back after StoreRetry; once the store answers, the merchant
// gets the event, once.
func TestStoreOutageRedeliversTheEvent(t *testing.T) {
	e := newEnv(t)
	fails := &orderStateFails{Store: e.store}
	fails.left.Store(3)
	e.port = fails
	m := newMerchant(t, nil)
	e.start([]string{m.url}, nil)
	ev := event("T1", "o-1", domain.StatusTradePaid)
	e.publish(ev)

	eventually(t, "the event to be delivered after the outage", func() bool { return len(m.received()) == 1 && e.settled() })
	if left := fails.left.Load(); left >= 0 {
		t.Fatalf("the store failed %d times, want 3 before it answered", 3-left)
	}
	checkPush(t, m.received()[0], ev, 1)
	if d := e.deliveries(ev.EventID)[m.url]; d.Attempts != 1 || d.State() != domain.DeliveryDelivered {
		t.Errorf("delivery recorded as %+v: the outage must not count as an attempt", d)
	}
}
