package lag_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/natsjs/embedded"
	"github.com/yzpay/yzpay/shared/servicetest"
)

type env struct {
	srv *embedded.Server
	js  jetstream.JetStream
	m   *metrics.Metrics
}

// newEnv runs a real JetStream with yzpay's streams, as the services set
// them up.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv, js := servicetest.JetStream(t)
	if err := natsjs.EnsureStreams(context.Background(), js, natsjs.DefaultStreamSetup(1)); err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, js: js, m: metrics.New()}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPollCountsPendingAckPendingRedeliveredAndOldestAge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tf := lag.Tradefetcher
	cons, err := e.js.CreateOrUpdateConsumer(ctx, tf.Stream, natsjs.TradefetcherConsumer(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := e.js.Publish(ctx, natsjs.WebhookSubject("trade_TradePaid"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.js.Stream(ctx, tf.Stream)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(seq uint64) time.Time {
		t.Helper()
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		return m.Time
	}
	// The clock is fixed, so the age is exact: 90 s after the first receipt.
	now := stored(1).Add(90 * time.Second)
	p := lag.New(e.js, e.m, []lag.Target{tf}, lag.Options{Logger: quiet(), Now: func() time.Time { return now }})
	// check polls until the gauges read as wanted: the server updates a
	// consumer's counts in its own goroutine, a moment after a publish.
	check := func(step string, pending, ackPending, redelivered float64, age time.Duration) {
		t.Helper()
		var diffs []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			if err := p.Poll(ctx); err != nil {
				t.Fatalf("%s: poll: %v", step, err)
			}
			diffs = diffs[:0]
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"pending", testutil.ToFloat64(e.m.ConsumerPending.WithLabelValues(tf.Stream, tf.Consumer)), pending},
				{"ack pending", testutil.ToFloat64(e.m.ConsumerAckPending.WithLabelValues(tf.Stream, tf.Consumer)), ackPending},
				{"redelivered", testutil.ToFloat64(e.m.ConsumerRedelivered.WithLabelValues(tf.Stream, tf.Consumer)), redelivered},
				{"oldest age", testutil.ToFloat64(e.m.ConsumerOldestAge.WithLabelValues(tf.Stream, tf.Consumer)), age.Seconds()},
			} {
				if c.got != c.want {
					diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", c.name, c.got, c.want))
				}
			}
			if len(diffs) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", step, strings.Join(diffs, "; "))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	check("nothing fetched", 5, 0, 0, 90*time.Second)
	if got := testutil.ToFloat64(e.m.StreamMessages.WithLabelValues(tf.Stream)); got != 5 {
		t.Errorf("stream messages = %v, want 5", got)
	}
	if got, want := testutil.ToFloat64(e.m.StreamBytes.WithLabelValues(tf.Stream)), float64(st.CachedInfo().State.Bytes); got != want || got == 0 {
		t.Errorf("stream bytes = %v, want %v", got, want)
	}

	batch, err := cons.FetchNoWait(3)
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	if len(got) != 3 {
		t.Fatalf("fetched %d messages, want 3", len(got))
	}
	check("three handed out", 2, 3, 0, 90*time.Second)

	// Acknowledging the first moves the ack floor: the second is the oldest.
	if err := got[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	check("first acked", 2, 2, 0, now.Sub(stored(2)))

	// Acknowledged out of order: the floor stays, so the second is still
	// the oldest. It is naked for a retry first; acks are handled in the
	// order they are sent, so the confirmed ack of the third means the nak
	// was handled too.
	if err := got[1].Nak(); err != nil {
		t.Fatal(err)
	}
	if err := got[2].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	check("second naked, third acked", 2, 1, 0, now.Sub(stored(2)))

	// Handed out again, the naked receipt counts as redelivered.
	var again jetstream.Msg
	waitFor(t, 10*time.Second, "the naked receipt to come back", func() bool {
		b, err := cons.FetchNoWait(1)
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			again = m
		}
		return again != nil
	})
	if md, _ := again.Metadata(); md.Sequence.Stream != 2 {
		t.Fatalf("got stream seq %d back, want 2", md.Sequence.Stream)
	}
	check("second redelivered", 2, 1, 1, now.Sub(stored(2)))

	// Once it is acknowledged the oldest is a receipt not handed out yet.
	if err := again.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	check("second acked", 2, 0, 0, now.Sub(stored(4)))

	rest, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	for m := range rest.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check("caught up", 0, 0, 0, 0)
}

// Until the services have created their consumer there is no lag to speak
// of: no series rather than a reassuring zero.
func TestPollWithoutConsumerHasNoSeries(t *testing.T) {
	e := newEnv(t)
	p := lag.New(e.js, e.m, []lag.Target{lag.Tradefetcher, lag.Notifier}, lag.Options{Logger: quiet()})
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e.m.ConsumerPending) + testutil.CollectAndCount(e.m.ConsumerOldestAge); n != 0 {
		t.Errorf("%d consumer series without consumers", n)
	}
	if n := testutil.CollectAndCount(e.m.StreamMessages); n != 2 {
		t.Errorf("%d stream series, want 2 (the streams exist)", n)
	}
	if got := testutil.ToFloat64(e.m.LagPollErrors); got != 0 {
		t.Errorf("poll errors = %v, want 0", got)
	}
}

// Run keeps the gauges current in the background, counts failed polls while
// the broker is gone, and returns nil when its context ends.
func TestRunFollowsTheStreamAndCountsFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nt := lag.Notifier
	if _, err := e.js.CreateOrUpdateConsumer(ctx, nt.Stream, natsjs.NotifierConsumer(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p := lag.New(e.js, e.m, []lag.Target{nt}, lag.Options{Interval: 10 * time.Millisecond, Timeout: time.Second, Logger: quiet()})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()

	pending := e.m.ConsumerPending.WithLabelValues(nt.Stream, nt.Consumer)
	waitFor(t, 10*time.Second, "the first poll", func() bool { return testutil.CollectAndCount(e.m.ConsumerPending) == 1 })
	for range 3 {
		if _, err := e.js.Publish(ctx, natsjs.StatusSubject("TRADE_SUCCESS"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "pending = 3", func() bool { return testutil.ToFloat64(pending) == 3 })
	waitFor(t, 10*time.Second, "a positive oldest age", func() bool {
		return testutil.ToFloat64(e.m.ConsumerOldestAge.WithLabelValues(nt.Stream, nt.Consumer)) > 0
	})
	if got := testutil.ToFloat64(e.m.LagPollErrors); got != 0 {
		t.Errorf("poll errors = %v before the broker went away", got)
	}

	e.srv.Shutdown()
	waitFor(t, 20*time.Second, "a failed poll to be counted", func() bool { return testutil.ToFloat64(e.m.LagPollErrors) >= 1 })
	if got := testutil.ToFloat64(pending); got != 3 {
		t.Errorf("pending = %v after failed polls; want the last polled value 3", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// oldestAge relies on the server answering a get past the last matching
// message with "not found", which the client maps to ErrMsgNotFound.
func TestGetPastTheEndIsMsgNotFound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	st, err := e.js.Stream(ctx, natsjs.WebhookStream)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(">"))
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("get from an empty stream: %v, want ErrMsgNotFound", err)
	}
}
