package notifier_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
)

// startGuarded runs a notifier like start, with a resolver standing in for
// DNS for per-order hosts (names not in it resolve as usual).
func (e *env) startGuarded(endpoints []string, edit func(*config.Notifier), hosts map[string]string) *metrics.Metrics {
	e.t.Helper()
	cfg := config.Notifier{Endpoints: endpoints, Secret: secret, RetrySchedule: retrySchedule, Jitter: -1,
		Timeout: 2 * time.Second, StoreRetry: 100 * time.Millisecond, Grace: time.Second}
	edit(&cfg)
	m := metrics.New()
	n, err := notifier.New(cfg, notifier.Deps{Store: e.store, JS: e.js, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LookupHost: func(ctx context.Context, host string) ([]netip.Addr, error) {
			if a, ok := hosts[host]; ok {
				return []netip.Addr{netip.MustParseAddr(a)}, nil
			}
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("notifier stopped with %v", err)
		}
	})
	return m
}

// publishWithNotifyURL creates ev's order with its own notify_url (as the
// gateway does) and publishes ev.
func (e *env) publishWithNotifyURL(ev domain.PaymentEvent, notifyURL string) {
	e.t.Helper()
	e.reach(ev)
	tok := strings.Repeat("t", 22) + ev.OrderID
	if _, err := e.store.BindCheckout(context.Background(), domain.Checkout{Token: tok, OrderID: ev.OrderID, NotifyURL: notifyURL}); err != nil {
		e.t.Fatal(err)
	}
	e.publishAs(ev.EventID, ev.Encode(), natsjs.StatusSubject(ev.Status))
}

// TestNotifyURLDelivered: an order with its own notify_url is notified
// there only — signed with SELF_SECRET like PUSH_API, with the same
// headers — while other orders still go to PUSH_API. Its host (loopback
// here) is listed explicitly in NOTIFY_URL_PRIVATE_HOSTS, so the guard lets
// it through.
func TestNotifyURLDelivered(t *testing.T) {
	e := newEnv(t)
	shared, own := newMerchant(t, nil), newMerchant(t, nil)
	ownURL := strings.Replace(own.url, "127.0.0.1", "localhost", 1)
	e.startGuarded([]string{shared.url}, func(c *config.Notifier) {
		c.NotifyURLHosts = []string{"localhost"}
		c.NotifyURLPrivateHosts = []string{"localhost"}
	}, map[string]string{"localhost": "127.0.0.1"})

	mine := event("E-nu-1", "o-1", domain.StatusTradeSuccess)
	e.publishWithNotifyURL(mine, ownURL)
	other := event("E-nu-2", "o-2", domain.StatusTradeSuccess)
	e.publish(other)
	eventually(t, "both events settled", func() bool {
		return len(own.received()) >= 1 && len(shared.received()) >= 1 && e.settled()
	})
	got := own.received()
	if len(got) != 1 || got[0].push.OrderID != "o-1" || got[0].eventID != mine.EventID || !got[0].push.Verify(secret) {
		t.Fatalf("notify_url got %+v; want one push of o-1 signed with SELF_SECRET", got)
	}
	if got[0].contentType != "application/x-www-form-urlencoded" {
		t.Errorf("notify_url push content type %q, want the PUSH_FORMAT default form", got[0].contentType)
	}
	for _, h := range shared.received() {
		if h.push.OrderID == "o-1" {
			t.Errorf("PUSH_API also got o-1's push; an order with a notify_url must notify there only")
		}
	}
	if d := e.deliveries(mine.EventID)[ownURL]; d.State() != domain.DeliveryDelivered {
		t.Errorf("delivery to notify_url = %+v, want delivered", d)
	}
}

// TestNotifyURLRetried: a notify_url that fails is retried on the same
// schedule as PUSH_API.
func TestNotifyURLRetried(t *testing.T) {
	e := newEnv(t)
	own := newMerchant(t, func(n int) int {
		if n == 1 {
			return 503
		}
		return 200
	})
	e.startGuarded([]string{newMerchant(t, nil).url}, func(c *config.Notifier) {
		c.NotifyURLHosts, c.NotifyURLPrivateHosts = []string{"127.0.0.1"}, []string{"127.0.0.1"}
	}, nil)
	ev := event("E-nu-r", "o-1", domain.StatusTradeSuccess)
	e.publishWithNotifyURL(ev, own.url)
	eventually(t, "retried delivery", func() bool { return len(own.received()) >= 2 && e.settled() })
	got := own.received()
	// The retry is due its schedule step after the first attempt began (as
	// the attempt log records it), not after the merchant saw it: the first
	// POST also opened the connection.
	log, err := e.store.AttemptsForEvent(context.Background(), ev.EventID)
	if err != nil || len(log) == 0 {
		t.Fatalf("attempt log of %s: %v, %v", ev.EventID, log, err)
	}
	if wait := got[1].at.Sub(log[0].At); got[1].attempt != 2 || wait < retrySchedule[0] {
		t.Errorf("second attempt %d reached the merchant %v after the first began; want attempt 2 after ≥ %v", got[1].attempt, wait, retrySchedule[0])
	}
}

// TestNotifyURLBlocked: per-order URLs whose host resolves to loopback,
// private (10/8) or link-local (the cloud metadata address) are refused when
// the socket is about to connect, so nothing reaches the address; the
// delivery is given up at once with a "blocked" error and counted. A host no
// longer in NOTIFY_URL_HOSTS is refused the same way.
func TestNotifyURLBlocked(t *testing.T) {
	e := newEnv(t)
	victim := newMerchant(t, nil) // a service on the operator's loopback
	port := victim.url[strings.LastIndex(victim.url, ":")+1 : strings.LastIndex(victim.url, "/")]
	m := e.startGuarded([]string{newMerchant(t, nil).url}, func(c *config.Notifier) {
		c.NotifyURLHosts = []string{"localhost", "internal.test", "metadata.test", "127.0.0.1"}
	}, map[string]string{"localhost": "127.0.0.1", "internal.test": "10.1.2.3", "metadata.test": "169.254.169.254",
		"mapped.test": "::ffff:127.0.0.1"})

	cases := map[string]string{
		"o-1": "http://localhost:" + port + "/notify",
		"o-2": "http://internal.test:" + port + "/notify",
		"o-3": "http://metadata.test:" + port + "/latest/meta-data",
		"o-4": "http://127.0.0.1:" + port + "/notify",
		"o-5": "http://mapped.test:" + port + "/notify", // not listed any more
	}
	for order, u := range cases {
		e.publishWithNotifyURL(event("E-blk-"+order, order, domain.StatusTradeSuccess), u)
	}
	eventually(t, "all events settled", e.settled)
	if n := len(victim.received()); n != 0 {
		t.Fatalf("the loopback service got %d requests; the guard must refuse before connecting", n)
	}
	for order, u := range cases {
		d := e.deliveries(event("E-blk-"+order, order, domain.StatusTradeSuccess).EventID)[u]
		if d.State() != domain.DeliveryFailed || d.Attempts != 1 || !strings.HasPrefix(d.LastError, "blocked: ") {
			t.Errorf("%s (%s): delivery %+v; want failed after 1 attempt with a blocked error", order, u, d)
		}
	}
	if got := testutil.ToFloat64(m.Deliveries.WithLabelValues("blocked")); got != float64(len(cases)) {
		t.Errorf("yzpay_deliveries_total{result=blocked} = %v, want %d", got, len(cases))
	}
}
