package notifier_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/servicetest"
	"github.com/yzpay/yzpay/shared/store"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store/sqlite"
)

const secret = "test_self_secret"

// retrySchedule is PUSH_RETRY_SCHEDULE in the tests, with distinct steps so
// a test can tell which one was applied.
var retrySchedule = []time.Duration{150 * time.Millisecond, 300 * time.Millisecond}

// hit is one request as the merchant received it.
type hit struct {
	push        merchant.Push
	body        []byte
	contentType string
	header      http.Header
	eventID     string
	attempt     int
	at          time.Time
}

// merchantServer is a merchant's PUSH_API endpoint; answer picks the HTTP
// status of its n-th request (1-based).
type merchantServer struct {
	t      *testing.T
	url    string
	mu     sync.Mutex
	hits   []hit
	answer func(n int) int
}

func newMerchant(t *testing.T, answer func(n int) int) *merchantServer {
	m := &merchantServer{t: t, answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p, err := merchant.FromRequest(r)
		if err != nil {
			t.Errorf("merchant cannot read the push: %v: %s", err, body)
		}
		h := hit{push: p, body: body, contentType: r.Header.Get("Content-Type"), header: r.Header.Clone(),
			eventID: r.Header.Get(notifier.HeaderEventID), at: time.Now()}
		h.attempt, _ = strconv.Atoi(r.Header.Get(notifier.HeaderAttempt))
		m.mu.Lock()
		m.hits = append(m.hits, h)
		n := len(m.hits)
		m.mu.Unlock()
		status := http.StatusOK
		if m.answer != nil {
			status = m.answer(n)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	}))
	t.Cleanup(srv.Close)
	m.url = srv.URL + "/notify"
	return m
}

func (m *merchantServer) received() []hit {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]hit(nil), m.hits...)
}

// env is a store and a broker the notifier runs on.
type env struct {
	t     *testing.T
	store *sqlite.Store
	js    jetstream.JetStream
	// port, when set, is the store the notifier is given instead of store
	// (a test's wrapper around it).
	port store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := servicetest.Start(t)
	st, js := b.Store, b.JS
	return &env{t: t, store: st, js: js}
}

// start runs a notifier pushing to endpoints until the test ends; edit
// adjusts the configuration. It returns the notifier's metrics.
func (e *env) start(endpoints []string, edit func(*config.Notifier)) *metrics.Metrics {
	e.t.Helper()
	cfg := config.Notifier{
		Endpoints:     endpoints,
		Secret:        secret,
		RetrySchedule: retrySchedule,
		Jitter:        -1, // none: the delays are checked
		Timeout:       2 * time.Second,
		StoreRetry:    100 * time.Millisecond,
		Grace:         time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	m := metrics.New()
	var st store.Store = e.store
	if e.port != nil {
		st = e.port
	}
	n, err := notifier.New(cfg, notifier.Deps{Store: st, JS: e.js, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

// event is a payment event as the tradefetcher makes it.
// qrIDOf gives each test order its own QR, as Youzan does: 501 for the
// first order "o-1", 502 for "o-2", and so on.
func qrIDOf(orderID string) int64 {
	var n int64
	if _, err := fmt.Sscanf(orderID, "o-%d", &n); err != nil || n < 1 {
		return 501
	}
	return 500 + n
}

func event(tid, orderID, status string) domain.PaymentEvent {
	payment := int64(0)
	if domain.IsPaid(status) {
		payment = 100
	}
	return domain.PaymentEvent{V: 1, EventID: domain.EventID(tid, orderID, status), OrderID: orderID, QRID: qrIDOf(orderID),
		TID: tid, Status: status, Payment: payment, UUID: "buyer-7", PayType: "WEIXIN_DAIXIAO",
		OccurredAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// publish stores ev in the payment stream as the tradefetcher does, after
// moving the order in the store to ev's status (the notifier signs only
// events the store backs).
func (e *env) publish(ev domain.PaymentEvent) {
	e.t.Helper()
	e.reach(ev)
	e.publishAs(ev.EventID, ev.Encode(), natsjs.StatusSubject(ev.Status))
}

// reach records in the store what the tradefetcher or sweeper would have
// before publishing ev: the order (its QR, price 100) and ev's status.
func (e *env) reach(ev domain.PaymentEvent) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.store.Reserve(ctx, domain.NewOrder{OrderID: ev.OrderID, Name: "test", Price: 100}, time.Minute); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.AttachQR(ctx, ev.OrderID, domain.QRCode{ID: ev.QRID, URL: fmt.Sprintf("https://qr.example/%d", ev.QRID)}); err != nil {
		e.t.Fatal(err)
	}
	if ev.Status == domain.StatusTradeClosed && ev.TID == "" {
		if _, err := e.store.CloseExpired(ctx, ev.OrderID, time.Now()); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	ob := domain.Observation{QRID: ev.QRID, TID: ev.TID, Status: ev.Status, Payment: ev.Payment, BuyerID: ev.UUID,
		PayType: ev.PayType, ObservedAt: time.Now()}
	if _, err := e.store.RecordObservations(ctx, []domain.Observation{ob}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) publishAs(msgID string, data []byte, subject string) {
	e.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID)); err != nil {
		e.t.Fatal(err)
	}
}

// deliveries is what the store recorded for eventID, by endpoint.
func (e *env) deliveries(eventID string) map[string]domain.Delivery {
	e.t.Helper()
	ds, err := e.store.DeliveriesForEvent(context.Background(), eventID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]domain.Delivery{}
	for _, d := range ds {
		out[d.Endpoint] = d
	}
	return out
}

// settled reports whether every event in the stream has been acked (or
// termed): nothing is pending or waiting for a retry.
func (e *env) settled() bool {
	e.t.Helper()
	return servicetest.Settled(e.t, e.js, natsjs.PaymentStream, natsjs.NotifierDurable)
}

// eventually waits until cond holds, failing the test after 10 s.
var eventually = servicetest.Eventually
