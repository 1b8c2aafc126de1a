package faults_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// faultAt and faultFor are stream positions: the fault starts after faultAt
// payments and lasts while faultFor more are made (about 1 s at the pace).
const (
	faultAt  = 60
	faultFor = 50
)

// 1. The tradefetcher dies mid-stream (no graceful shutdown) and is started
// again: receipts it held come back after AckWait, nothing is lost.
func TestFaultTradefetcherCrash(t *testing.T) {
	h := newHarness(t, options{})
	s := h.startStream(payments)
	s.waitPaid(t, faultAt)
	// Youzan answers slowly while the kill lands, so the receipts counted as
	// unacked are still being fetched when it does (a fast fetch could be
	// acked between the count and the kill).
	h.sb.SetKnobs(sandbox.Knobs{Latency: 2 * time.Second})
	h.waitBusy(natsjs.WebhookStream, natsjs.TradefetcherDurable)
	h.killFetcher()
	h.sb.SetKnobs(baseKnobs)
	s.waitPaid(t, faultAt+faultFor)
	h.restartFetcher()
	h.settle("tradefetcher-crash", s, time.Now())
	h.procMu.Lock()
	m := h.tf.m
	h.procMu.Unlock()
	if n := counter(m, "yzpay_consumer_redeliveries_total", nil); n == 0 {
		t.Errorf("the restarted tradefetcher saw no redelivery: the kill caught nothing in flight")
	} else {
		t.Logf("receipts redelivered to the restarted tradefetcher: %v", n)
	}
}

// 2. The notifier dies mid-stream and is started again.
func TestFaultNotifierCrash(t *testing.T) {
	h := newHarness(t, options{})
	s := h.startStream(payments)
	s.waitPaid(t, faultAt)
	// The kill must catch a push in flight: the merchant holds its answers
	// until the notifier is gone (an unacked count read just before the kill
	// can be stale by the time it lands, and a fast notifier has nothing
	// in flight most of the time).
	release := h.merchant.holdAnswers()
	eventually(t, 20*time.Second, "a push waiting for the merchant's answer", func() bool { return h.merchant.held.Load() > 0 })
	h.killNotifier()
	release()
	s.waitPaid(t, faultAt+faultFor)
	h.restartNotifier()
	h.settle("notifier-crash", s, time.Now())
	h.procMu.Lock()
	m := h.nt.m
	h.procMu.Unlock()
	if n := counter(m, "yzpay_consumer_redeliveries_total", nil); n == 0 {
		t.Errorf("the restarted notifier saw no redelivery: the kill caught nothing in flight")
	} else {
		t.Logf("events redelivered to the restarted notifier: %v", n)
	}
}

// 3. The JetStream server restarts mid-stream (same store dir and port).
// While it is down the gateway answers Youzan's pushes with 503, and the
// sandbox's Youzan-style re-pushes bring the receipts in later.
func TestFaultNATSRestart(t *testing.T) {
	h := newHarness(t, options{})
	s := h.startStream(payments)
	s.waitPaid(t, faultAt)
	h.stopNATS()
	// Down long enough that pushes are refused (not just delayed in the
	// client's reconnect buffer) and the sandbox has to re-push them.
	eventually(t, 30*time.Second, "the gateway refusing pushes with 503", func() bool { return h.pushes503.Load() >= 20 })
	s.waitPaid(t, faultAt+faultFor)
	h.startNATS()
	end := time.Now()
	h.settle("nats-restart", s, end)
	if n := h.pushes503.Load(); n == 0 {
		t.Errorf("the gateway never answered 503 while JetStream was down")
	}
	unavailable := counter(h.gw.m, "yzpay_pushes_received_total", map[string]string{"result": "unavailable"})
	st := h.sb.Stats()
	t.Logf("gateway 503s to pushes: %d (metric unavailable=%v); sandbox pushes failed=%d sent=%d",
		h.pushes503.Load(), unavailable, st.PushesFailed, st.PushesSent)
	if unavailable == 0 || st.PushesFailed == 0 {
		t.Errorf("expected refused pushes: metric unavailable=%v, sandbox failed pushes=%d", unavailable, st.PushesFailed)
	}
}

// 4. Postgres is unreachable for a few seconds (the proxy between the
// services and Postgres is cut). The services keep running, /readyz says
// 503, receipts and events are redelivered, nothing is acked unstored.
func TestFaultPostgresDown(t *testing.T) {
	h := newHarness(t, options{})
	if code := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the fault: %d", code)
	}
	s := h.startStream(payments)
	s.waitPaid(t, faultAt)
	h.proxy.cut()
	eventually(t, 10*time.Second, "/readyz answering 503", func() bool { return h.get("/readyz") == http.StatusServiceUnavailable })
	hold := time.NewTimer(3 * time.Second) // the outage itself
	<-hold.C
	if code := h.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d, want 503", code)
	}
	h.proxy.restore()
	end := time.Now()
	eventually(t, 20*time.Second, "/readyz answering 200 again", func() bool { return h.get("/readyz") == http.StatusOK })
	h.settle("postgres-down", s, end)
	h.procMu.Lock()
	tfm, ntm := h.tf.m, h.nt.m
	h.procMu.Unlock()
	storeErrs := counter(tfm, "yzpay_receipts_processed_total", map[string]string{"result": "store_error"})
	redelivered := counter(tfm, "yzpay_consumer_redeliveries_total", nil) + counter(ntm, "yzpay_consumer_redeliveries_total", nil)
	t.Logf("receipts naked for a store error: %v; messages redelivered (both workers): %v", storeErrs, redelivered)
	if redelivered == 0 {
		t.Errorf("no message was redelivered: the outage did not reach the workers")
	}
}

// 5a. The merchant answers 503 for several retry steps, then recovers: every
// event is delivered, none given up.
func TestFaultMerchantDownThenBack(t *testing.T) {
	h := newHarness(t, options{notifySchedule: ms(20, 50, 100, 200, 400, 800, 1600)})
	s := h.startStream(payments)
	s.waitPaid(t, faultAt)
	h.merchant.fail.Store(true)
	s.waitPaid(t, faultAt+faultFor)
	// Payments may outrun the schedule on a fast machine: the outage lasts
	// until some push has been refused at its third attempt.
	eventually(t, 10*time.Second, "a push refused at its third attempt", func() bool {
		for _, p := range h.merchant.pushes() {
			if p.answered == http.StatusServiceUnavailable && p.attempt >= 3 {
				return true
			}
		}
		return false
	})
	h.merchant.fail.Store(false)
	l := h.settle("merchant-503", s, time.Now())
	if l.maxAttempt < 3 {
		t.Errorf("highest attempt %d: the outage did not span several retry steps", l.maxAttempt)
	}
	failed, err := h.st.ListDeliveries(context.Background(), store.DeliveryFilter{State: domain.DeliveryFailed})
	if err != nil || len(failed) != 0 {
		t.Errorf("%d deliveries given up (err %v), want none", len(failed), err)
	}
}

// 5b. The merchant is unreachable (connection refused) past the whole retry
// schedule: deliveries are given up, visibly; after it is back an operator
// replays them (admin API for one, replay.AllFailed for the rest) and each
// is delivered with the same event id, its attempt count going on.
func TestFaultMerchantGivenUpThenReplayed(t *testing.T) {
	sched := ms(20, 50, 100, 200)
	h := newHarness(t, options{notifySchedule: sched})
	s := h.startStream(payments)
	s.waitPaid(t, faultAt)
	h.merchant.down()
	s.waitPaid(t, faultAt+faultFor)
	ctx := context.Background()
	// Wait until some deliveries are given up and none is still being
	// retried against the dead endpoint.
	var failed []domain.Delivery
	eventually(t, 30*time.Second, "deliveries given up", func() bool {
		var err error
		failed, err = h.st.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryFailed, Limit: 1000})
		return err == nil && len(failed) > 0
	})
	h.merchant.up()
	<-s.done
	eventually(t, 60*time.Second, "pipeline idle with nothing pending", func() bool {
		p, err := h.st.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryPending, Limit: 1})
		return err == nil && len(p) == 0 && h.idle()
	})
	failed, err := h.st.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryFailed, Limit: 1000})
	if err != nil || len(failed) == 0 {
		t.Fatalf("given-up deliveries: %d (err %v), want some", len(failed), err)
	}
	h.procMu.Lock()
	ntMetrics := h.nt.m
	h.procMu.Unlock()
	if n := counter(ntMetrics, "yzpay_deliveries_given_up_total", nil); n < float64(len(failed)) {
		t.Errorf("yzpay_deliveries_given_up_total = %v, want ≥ %d", n, len(failed))
	}
	for _, d := range failed {
		if d.Attempts != len(sched)+1 {
			t.Errorf("delivery %s given up after %d attempts, want %d", d.EventID, d.Attempts, len(sched)+1)
		}
	}
	replayed := map[string]bool{}
	for _, d := range failed {
		replayed[d.EventID] = true
	}

	// Replay: one through the admin API, the rest with AllFailed.
	end := time.Now()
	code, body, err := h.postAdmin("/api/admin/deliveries/" + failed[0].EventID + "/replay")
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("admin replay: %d %s %v", code, body, err)
	}
	n, err := replay.Replayer{Store: h.st, JS: h.js}.AllFailed(ctx, "")
	if err != nil {
		t.Fatalf("AllFailed: %v", err)
	}
	t.Logf("given up: %d; replayed by the admin API: 1, by AllFailed: %d", len(failed), n)
	h.settle("merchant-given-up-replayed", s, end)

	// Each replayed event reached the merchant again after the replay, same
	// event id, attempt numbers going on past the schedule. (A push the
	// merchant took just as it went down may have been seen before: its
	// answer was lost, so that one counts as a duplicate in the ledger.)
	after := map[string]int{}
	for _, p := range h.merchant.pushes() {
		if replayed[p.eventID] && p.answered == http.StatusOK && !p.at.Before(end) {
			after[p.eventID] = max(after[p.eventID], p.attempt)
		}
	}
	for id := range replayed {
		a, ok := after[id]
		switch {
		case !ok:
			t.Errorf("replayed event %s not pushed again after the replay", id)
		case a <= len(sched):
			t.Errorf("replayed event %s delivered with X-Yzpay-Attempt %d, want > %d", id, a, len(sched))
		}
	}
	left, err := h.st.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryFailed, Limit: 1000})
	if err != nil || len(left) != 0 {
		t.Errorf("%d deliveries still failed after the replay (err %v)", len(left), err)
	}
}

// 6. Youzan misbehaves through the sandbox knobs, one sub-test (and one
// ledger) per kind of trouble: answers slower than the client's timeout,
// HTTP 502s, rate limiting, every token expired mid-run, and trade.get
// not yet seeing new trades. Every payment is processed in the end.
func TestFaultYouzan(t *testing.T) {
	type phase struct {
		name    string
		timeout time.Duration
		// inject starts the trouble once faultAt payments were made and
		// returns when it should end.
		inject func(h *harness, s *stream)
		// check proves the trouble reached the pipeline.
		check func(t *testing.T, h *harness)
	}
	retried := func(t *testing.T, h *harness) {
		h.procMu.Lock()
		m := h.tf.m
		h.procMu.Unlock()
		// A trade not found yet (read lag) is parked in the store and
		// retried from there, not naked.
		n := counter(m, "yzpay_receipts_processed_total", map[string]string{"result": "retry"}) +
			counter(m, "yzpay_receipts_processed_total", map[string]string{"result": "failed"}) +
			counter(m, "yzpay_receipts_processed_total", map[string]string{"result": "parked"})
		t.Logf("trade.get failures retried by the tradefetcher: %v", n)
		if n == 0 {
			t.Errorf("no trade.get failed: the trouble did not reach the tradefetcher")
		}
	}
	holdWhileStreaming := func(k sandbox.Knobs) func(h *harness, s *stream) {
		return func(h *harness, s *stream) {
			h.sb.SetKnobs(k)
			s.waitPaid(h.t, faultAt+faultFor)
		}
	}
	for _, p := range []phase{
		{
			name:    "latency",
			timeout: 300 * time.Millisecond,
			inject: func(h *harness, s *stream) {
				k := baseKnobs
				k.Latency = 500 * time.Millisecond
				h.sb.SetKnobs(k)
				// QR creation times out as well, so the stream stalls: the
				// trouble lasts a fixed time.
				hold := time.NewTimer(2 * time.Second)
				<-hold.C
			},
			check: retried,
		},
		{name: "5xx", inject: holdWhileStreaming(sandbox.Knobs{Latency: baseKnobs.Latency, ErrorRate: 0.3}), check: retried},
		{name: "ratelimit", inject: holdWhileStreaming(sandbox.Knobs{Latency: baseKnobs.Latency, RateLimitRate: 0.3}), check: retried},
		{
			name: "token-expiry",
			inject: func(h *harness, s *stream) {
				for i := range 3 {
					s.waitPaid(h.t, faultAt+i*faultFor/2)
					h.sb.ExpireTokens()
				}
			},
			check: func(t *testing.T, h *harness) {
				// One token per client at start (gateway, tradefetcher),
				// then a new one per client after each expiry.
				if n := h.sb.Stats().TokenRequests; n <= 2 {
					t.Errorf("%d token requests: the clients never renewed an expired token", n)
				} else {
					t.Logf("token requests: %d", n)
				}
			},
		},
		{name: "readlag", inject: holdWhileStreaming(sandbox.Knobs{Latency: baseKnobs.Latency, ReadLag: time.Second}), check: retried},
	} {
		t.Run(p.name, func(t *testing.T) {
			h := newHarness(t, options{youzanTimeout: p.timeout})
			s := h.startStream(payments)
			s.waitPaid(t, faultAt)
			p.inject(h, s)
			h.sb.SetKnobs(baseKnobs)
			h.settle("youzan-"+p.name, s, time.Now())
			p.check(t, h)
		})
	}
}
