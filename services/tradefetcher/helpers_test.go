package tradefetcher

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/servicetest"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store/sqlite"
	"github.com/yzpay/yzpay/shared/youzan"
)

// reading is one answer of the fake trade.get.
type reading struct {
	trade youzan.Trade
	err   error
}

type call struct {
	arg string
	at  time.Time
}

// fakeYouzan is the Youzan port: trade.get answers per tid in turn (the last
// answer repeats), trades.qr.get answers per QR id.
type fakeYouzan struct {
	mu        sync.Mutex
	trades    map[string][]reading
	qrTrades  map[int64][]youzan.QRTrade
	qrErr     error
	tradeGets []call
	qrQueries []youzan.QRTradesQuery
}

func newFakeYouzan() *fakeYouzan {
	return &fakeYouzan{trades: map[string][]reading{}, qrTrades: map[int64][]youzan.QRTrade{}}
}

func (f *fakeYouzan) answer(tid string, rs ...reading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trades[tid] = rs
}

func (f *fakeYouzan) GetTrade(_ context.Context, tid string) (youzan.Trade, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tradeGets = append(f.tradeGets, call{tid, time.Now()})
	rs := f.trades[tid]
	if len(rs) == 0 {
		return youzan.Trade{}, &youzan.Error{API: youzan.APITradeGet, Kind: youzan.NotFound, Message: "no such trade"}
	}
	r := rs[0]
	if len(rs) > 1 {
		f.trades[tid] = rs[1:]
	}
	return r.trade, r.err
}

func (f *fakeYouzan) QRTrades(_ context.Context, q youzan.QRTradesQuery) (youzan.QRTradesPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.qrQueries = append(f.qrQueries, q)
	if f.qrErr != nil {
		return youzan.QRTradesPage{}, f.qrErr
	}
	ts := f.qrTrades[q.QRID]
	return youzan.QRTradesPage{Trades: ts, Total: len(ts)}, nil
}

func (f *fakeYouzan) gets() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.tradeGets...)
}

// env is a store, a broker and a fake Youzan; start runs the fetcher on them.
type env struct {
	t      *testing.T
	store  *sqlite.Store
	js     jetstream.JetStream
	youzan *fakeYouzan
	m      *metrics.Metrics
	log    *slog.Logger
	// giveUpAfter is FETCH_GIVE_UP_AFTER for start; 0 = the default.
	giveUpAfter time.Duration
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := servicetest.Start(t)
	st, js := b.Store, b.JS
	return &env{t: t, store: st, js: js, youzan: newFakeYouzan(), m: metrics.New(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// retrySchedule is FETCH_RETRY_SCHEDULE in the tests: short, and with
// distinct steps so a test can tell which one was applied.
var retrySchedule = []time.Duration{150 * time.Millisecond, 300 * time.Millisecond}

// start runs the fetcher until the test ends.
func (e *env) start() {
	e.t.Helper()
	f, err := New(config.Tradefetcher{
		RetrySchedule: retrySchedule,
		GiveUpAfter:   e.giveUpAfter,
		StoreRetry:    100 * time.Millisecond,
		Grace:         time.Second,
		// The built-in sweeper must stay out of the way; tests sweep by hand.
		Sweep: config.Sweep{Interval: time.Hour},
	}, Deps{Store: e.store, JS: e.js, Youzan: e.youzan, Metrics: e.m, Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("fetcher stopped with %v", err)
		}
	})
}

// order creates an order bound to qrID, as the gateway does.
func (e *env) order(orderID string, qrID int64) domain.Order {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.store.Reserve(ctx, domain.NewOrder{OrderID: orderID, Name: "tea", Price: 100}, time.Minute); err != nil {
		e.t.Fatal(err)
	}
	o, err := e.store.AttachQR(ctx, orderID, domain.QRCode{ID: qrID, URL: "https://pay.example/qr"})
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *env) orderByID(orderID string) domain.Order {
	e.t.Helper()
	o, err := e.store.OrderByID(context.Background(), orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// receipt stores a verified push the way the gateway does.
func (e *env) receipt(pushType, tid, status, msgID string) {
	e.t.Helper()
	m := nats.NewMsg(natsjs.WebhookSubject(pushType))
	m.Data = []byte(`{"type":"` + pushType + `","id":"` + tid + `"}`)
	m.Header.Set(natsjs.HeaderTID, tid)
	m.Header.Set(natsjs.HeaderReceivedAt, "2024-01-02T03:04:05.123456789Z")
	if status != "" {
		m.Header.Set(natsjs.HeaderStatus, status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID)); err != nil {
		e.t.Fatal(err)
	}
}

// streamMsgs returns every message of stream on subject (all when "").
func (e *env) streamMsgs(stream, subject string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, stream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		if subject == "" || m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

// events returns the payment-status events published so far, decoded.
func (e *env) events() []event {
	e.t.Helper()
	var out []event
	for _, m := range e.streamMsgs(natsjs.PaymentStream, "") {
		ev, err := domain.Decode(m.Data)
		if err != nil {
			e.t.Fatalf("event %s: %v", m.Data, err)
		}
		out = append(out, event{PaymentEvent: ev, subject: m.Subject, header: m.Header})
	}
	return out
}

type event struct {
	domain.PaymentEvent
	subject string
	header  nats.Header
}

// settled reports whether every receipt in the stream has been acked (or
// termed): nothing is pending or waiting for redelivery.
func (e *env) settled() bool {
	e.t.Helper()
	return servicetest.Settled(e.t, e.js, natsjs.WebhookStream, natsjs.TradefetcherDurable)
}

// eventually waits until cond holds, failing the test after 10 s.
var eventually = servicetest.Eventually
