package notifier_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
)

func pausedGauge(t *testing.T, m *metrics.Metrics, url string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.EndpointPaused.WithLabelValues(config.RedactURL(url)).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetGauge().GetValue()
}

// TestEndpointPauseProbeResume: one endpoint is down for longer than
// ENDPOINT_PAUSE_AFTER, then back. The healthy endpoint gets every event
// promptly throughout; the down one is paused (gauge 1), probed about once
// per ENDPOINT_PROBE_INTERVAL rather than on every retry, and once back it
// gets every event, each order's statuses in order, nothing given up.
func TestEndpointPauseProbeResume(t *testing.T) {
	e := newEnv(t)
	var down atomic.Bool
	down.Store(true)
	good := newMerchant(t, nil)
	flaky := newMerchant(t, func(int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	const (
		pauseAfter = 400 * time.Millisecond
		probeEvery = 300 * time.Millisecond
	)
	m := e.start([]string{good.url, flaky.url}, func(c *config.Notifier) {
		// Long enough that nothing would be given up before the pause.
		c.RetrySchedule = []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond,
			100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
		c.PauseAfter, c.ProbeInterval, c.DrainRate = pauseAfter, probeEvery, 50
	})

	published := map[string]time.Time{}
	var events []domain.PaymentEvent
	send := func(from, to int) {
		for i := from; i <= to; i++ {
			id := "o-" + itoa(i)
			for _, st := range []string{domain.StatusWaitBuyerPay, domain.StatusTradeSuccess} {
				ev := event("E"+itoa(1000+i), id, st)
				published[ev.EventID] = time.Now()
				e.publish(ev)
				events = append(events, ev)
			}
		}
	}
	send(1, 5)
	eventually(t, "the failing endpoint paused", func() bool { return pausedGauge(t, m, flaky.url) == 1 })
	pausedAt := time.Now()
	// Events while paused: held for the flaky endpoint, sent to the good one.
	send(6, 10)
	window := 4 * probeEvery
	deadline := pausedAt.Add(window)
	for time.Now().Before(deadline) {
		if pausedGauge(t, m, flaky.url) != 1 {
			t.Fatal("the endpoint resumed while still down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Under load publishing alone can outlast the window: count over the
	// time that really passed since the pause was seen. A request already
	// on its way then is covered by the slack of 2.
	end := time.Now()
	elapsed := end.Sub(pausedAt)
	probes := 0
	for _, h := range flaky.received() {
		if h.at.After(pausedAt) && !h.at.After(end) {
			probes++
		}
	}
	t.Logf("while paused for %v: %d requests to the down endpoint (probe interval %v)", elapsed.Round(time.Millisecond), probes, probeEvery)
	if probes > int(elapsed/probeEvery)+2 {
		t.Errorf("%d requests to a paused endpoint in %v; want about one per %v", probes, elapsed, probeEvery)
		for _, h := range flaky.received() {
			if h.at.After(pausedAt) && !h.at.After(end) {
				t.Logf("  %v after the pause was seen: %s attempt %d", h.at.Sub(pausedAt), h.eventID, h.attempt)
			}
		}
	}

	// The healthy endpoint was never slowed: every event arrived promptly.
	eventually(t, "every event at the healthy endpoint", func() bool {
		got := map[string]bool{}
		for _, h := range good.received() {
			got[h.eventID] = true
		}
		return len(got) == len(events)
	})
	var worst time.Duration
	for _, h := range good.received() {
		if d := h.at.Sub(published[h.eventID]); d > worst {
			worst = d
		}
	}
	t.Logf("healthy endpoint: slowest delivery %v after publish", worst)
	if worst > 2*time.Second {
		t.Errorf("the healthy endpoint waited %v for an event; a paused endpoint must not slow it", worst)
	}

	down.Store(false)
	resumed := time.Now()
	delivered := func() map[string]bool {
		ok := map[string]bool{}
		for _, h := range flaky.received() {
			if h.at.After(resumed) {
				ok[h.eventID] = true
			}
		}
		return ok
	}
	eventually(t, "every event at the recovered endpoint", func() bool { return len(delivered()) == len(events) })
	t.Logf("recovered endpoint: all %d events delivered %v after it came back", len(events), time.Since(resumed).Round(time.Millisecond))
	eventually(t, "the paused gauge back to 0", func() bool { return pausedGauge(t, m, flaky.url) == 0 })

	// In order per order: no successful push older than one before it.
	last := map[string]int{}
	for _, h := range flaky.received() {
		if !h.at.After(resumed) {
			continue
		}
		ev := eventByID(events, h.eventID)
		if p, ok := last[ev.OrderID]; ok && ev.Position() < p {
			t.Errorf("order %s: %s arrived after a newer status", ev.OrderID, ev.Status)
		}
		last[ev.OrderID] = ev.Position()
	}
	// The merchant counts a push when it arrives; the notifier stores the
	// answer after it, so the store is waited for, not read once.
	undelivered := func() []string {
		var bad []string
		for _, ev := range events {
			d := e.deliveries(ev.EventID)[flaky.url]
			if d.State() != domain.DeliveryDelivered {
				bad = append(bad, ev.EventID+":"+ev.Status+" "+d.State()+" ("+d.LastError+")")
			}
		}
		return bad
	}
	for deadline := time.Now().Add(10 * time.Second); len(undelivered()) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not stored as delivered at the recovered endpoint: %v", undelivered())
		}
	}
	eventually(t, "the stream settled", e.settled)
	hs, err := e.store.ListEndpointHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.State != domain.EndpointActive || h.Pending != 0 {
			t.Errorf("endpoint health at the end: %+v", h)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func eventByID(evs []domain.PaymentEvent, id string) domain.PaymentEvent {
	for _, ev := range evs {
		if ev.EventID == id {
			return ev
		}
	}
	return domain.PaymentEvent{}
}
