// Package faults_test checks issue 6, "no payment lost": the three services
// run separately in-process, each with its own NATS connection and store
// handle, so one of them (or NATS, Postgres, the merchant, Youzan) can fail
// abruptly while the others keep running. After each fault a ledger proves
// that every payment reached the merchant.
package faults_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/services/tradefetcher"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/natsjs/embedded"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/store/postgres"
	"github.com/yzpay/yzpay/shared/store/postgres/postgrestest"
	"github.com/yzpay/yzpay/shared/youzan"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

const (
	selfSecret = "faults_self_secret"
	apiKey     = "faults-api-key"
	adminKey   = "faults-admin-key"

	payments  = 200                   // per fault
	payEvery  = 20 * time.Millisecond // steady pace: 200 payments in about 4 s
	ackWait   = 2 * time.Second       // both workers: a dead worker's messages come back fast
	ledgerMax = 90 * time.Second      // deadline for full delivery after the stream
)

// baseKnobs is the sandbox's normal behaviour in these tests.
var baseKnobs = sandbox.Knobs{Latency: 50 * time.Millisecond}

// merchantDelay is how long the merchant takes to answer a push.
const merchantDelay = 30 * time.Millisecond

func ms(ds ...int) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d) * time.Millisecond
	}
	return out
}

// options tune one harness.
type options struct {
	notifySchedule []time.Duration // default 20ms,50ms,100ms,200ms
	fetchSchedule  []time.Duration // default 20ms,50ms,100ms,200ms
	youzanTimeout  time.Duration   // default 2s
	claimFor       time.Duration   // config.Gateway.ClaimFor; default 1s, -1 = the product's default
}

// harness is the pipeline split into its services.
type harness struct {
	t    *testing.T
	o    options
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc

	dbURL    string // direct, for the test's own checks
	svcDBURL string // through the proxy, for the services
	proxy    *tcpProxy
	st       *postgres.Store // the test's own store handle (direct)

	natsDir  string
	natsPort int
	natsMu   sync.Mutex
	ns       *embedded.Server
	nc       *nats.Conn // the test's own connection (reconnects forever)
	js       jetstream.JetStream

	// clusterURL and replicas are set by the cluster test: every service
	// gets all nodes' URLs and replicated streams.
	clusterURL string
	replicas   int

	sb    *sandbox.Sandbox
	sbURL string

	gw        *gatewayProc
	pushes503 atomic.Int64 // 503 answers of the gateway to Youzan pushes

	procMu sync.Mutex
	tf, nt *proc

	merchant *merchant
}

// newHarness starts Postgres (fresh database behind a TCP proxy), an
// embedded JetStream server on a fixed port, the Youzan sandbox, the test
// merchant and the three services.
func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("fault tests are long; skipped with -short")
	}
	if o.notifySchedule == nil {
		o.notifySchedule = ms(20, 50, 100, 200)
	}
	if o.fetchSchedule == nil {
		o.fetchSchedule = ms(20, 50, 100, 200)
	}
	switch o.claimFor {
	case 0:
		o.claimFor = time.Second
	case -1:
		o.claimFor = 0
	}
	if o.youzanTimeout == 0 {
		o.youzanTimeout = 2 * time.Second
	}
	h := &harness{t: t, o: o, log: testLogger(t)}
	h.ctx, h.stop = context.WithCancel(context.Background())
	t.Cleanup(h.stop)

	// Postgres: the services go through a proxy the test can cut.
	h.dbURL = postgrestest.NewDatabase(t)
	u, err := url.Parse(h.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	h.proxy = newTCPProxy(t, u.Host)
	u.Host = h.proxy.addr
	h.svcDBURL = u.String()
	h.st, err = postgres.Open(h.ctx, h.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.st.Close() })
	if err := h.st.Migrate(h.ctx); err != nil {
		t.Fatal(err)
	}

	// JetStream on a fixed port and store dir, so it can be restarted.
	h.natsDir = t.TempDir()
	h.natsPort = freePort(t)
	h.startNATS()
	t.Cleanup(func() {
		h.natsMu.Lock()
		defer h.natsMu.Unlock()
		if h.ns != nil {
			h.ns.Shutdown()
			h.ns = nil
		}
	})
	h.nc, h.js, err = natsjs.Connect(h.ctx, h.natsURL(), "faults-test", 1, time.Minute, h.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.nc.Close)

	// The merchant.
	h.merchant = newMerchant(t)

	// The sandbox, served on its own listener; it pushes to the gateway.
	// Youzan answers in about 50 ms, as the real one does, so that a worker
	// always has trade.get calls in flight when it is killed.
	h.sb, err = sandbox.New(sandbox.Config{RetryScale: 0.002, Seed: uint64(time.Now().UnixNano()),
		Knobs: baseKnobs})
	if err != nil {
		t.Fatal(err)
	}
	sbSrv := httptest.NewServer(h.sb)
	h.sbURL = sbSrv.URL

	h.gw = h.startGateway()
	h.sb.SetPushURL(h.gw.url + "/api/status")
	t.Cleanup(func() {
		// LIFO: the sandbox stops pushing before the gateway goes away.
		h.sb.Close()
		sbSrv.Close()
	})

	h.tf = h.startFetcher()
	h.nt = h.startNotifier()
	t.Cleanup(func() {
		h.procMu.Lock()
		tf, nt := h.tf, h.nt
		h.procMu.Unlock()
		nt.kill(t)
		tf.kill(t)
	})
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("YZPAY_FAULTS_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (h *harness) natsURL() string {
	if h.clusterURL != "" {
		return h.clusterURL
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort)
}

func (h *harness) startNATS() {
	h.t.Helper()
	var ns *embedded.Server
	var err error
	// The port may linger for a moment after a shutdown.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, err = embedded.Start(embedded.Options{StoreDir: h.natsDir, Listen: true, Port: h.natsPort})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("start NATS: %v", err)
	}
	h.natsMu.Lock()
	h.ns = ns
	h.natsMu.Unlock()
}

func (h *harness) stopNATS() {
	h.natsMu.Lock()
	ns := h.ns
	h.ns = nil
	h.natsMu.Unlock()
	if ns != nil {
		ns.Shutdown()
	}
}

func (h *harness) youzanClient(m *metrics.Metrics) *youzan.Client {
	h.t.Helper()
	c := h.sb.Config()
	yc, err := youzan.New(youzan.Config{
		BaseURL: h.sbURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret, KdtID: c.KdtID,
		Timeout: h.o.youzanTimeout, Observe: m.ObserveYouzan, Logger: h.log,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return yc
}

// conn gives a service its own NATS connection and store handle.
func (h *harness) conn(name string) (*nats.Conn, jetstream.JetStream, *postgres.Store) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	nc, js, err := natsjs.Connect(ctx, h.natsURL(), name, max(h.replicas, 1), 30*time.Second, h.log.With("service", name))
	if err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	st, err := postgres.Open(ctx, h.svcDBURL)
	if err != nil {
		nc.Close()
		h.t.Fatalf("%s: %v", name, err)
	}
	return nc, js, st
}

// gatewayProc is the gateway on its own listener.
type gatewayProc struct {
	url string
	m   *metrics.Metrics
	nc  *nats.Conn
	st  *postgres.Store
}

func (h *harness) startGateway() *gatewayProc {
	h.t.Helper()
	nc, js, st := h.conn("gateway")
	m := metrics.New()
	c := h.sb.Config()
	gw, err := gateway.New(config.Gateway{
		APIKey: apiKey, AdminKey: adminKey, Youzan: config.Youzan{ClientID: c.ClientID, ClientSecret: c.ClientSecret},
		// A Youzan failure leaves the order's creation claim in place; a
		// short claim lets the merchant's retry go ahead (see the report).
		ClaimFor:       h.o.claimFor,
		PublishTimeout: time.Second,
	}, gateway.Deps{
		Store: st, JS: js, Youzan: h.youzanClient(m), Metrics: m, Logger: h.log.With("service", "gateway"),
		Checks:   []httpapi.Check{{Name: "nats", Fn: natsjs.Ping(nc, js)}, {Name: "store", Fn: st.Ping}},
		Replayer: replay.Replayer{Store: st, JS: js},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	inner := gw.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/status" {
			inner.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		inner.ServeHTTP(sw, r)
		if sw.status == http.StatusServiceUnavailable {
			h.pushes503.Add(1)
		}
	}))
	g := &gatewayProc{url: srv.URL, m: m, nc: nc, st: st}
	h.t.Cleanup(func() {
		srv.Close()
		nc.Close()
		st.Close()
	})
	return g
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// proc is one running worker (tradefetcher or notifier).
type proc struct {
	name   string
	m      *metrics.Metrics
	nc     *nats.Conn
	st     *postgres.Store
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (h *harness) spawn(name string, run func(ctx context.Context) error, nc *nats.Conn, st *postgres.Store, m *metrics.Metrics) *proc {
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{name: name, m: m, nc: nc, st: st, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx) }()
	return p
}

func (h *harness) startFetcher() *proc {
	h.t.Helper()
	nc, js, st := h.conn("tradefetcher")
	m := metrics.New()
	f, err := tradefetcher.New(config.Tradefetcher{
		RetrySchedule: h.o.fetchSchedule,
		StoreRetry:    300 * time.Millisecond,
		Grace:         time.Millisecond,
		AckWait:       ackWait,
		Broker:        config.Broker{Replicas: h.replicas},
		// Reconciliation off: the ledger must prove the push path itself.
		Sweep: config.Sweep{Interval: time.Hour, OrderTTL: 24 * time.Hour},
	}, tradefetcher.Deps{Store: st, JS: js, Youzan: h.youzanClient(m), Metrics: m, Logger: h.log})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.spawn("tradefetcher", f.Run, nc, st, m)
}

func (h *harness) startNotifier() *proc {
	h.t.Helper()
	nc, js, st := h.conn("notifier")
	m := metrics.New()
	n, err := notifier.New(config.Notifier{
		Endpoints:     []string{h.merchant.url()},
		Secret:        selfSecret,
		RetrySchedule: h.o.notifySchedule,
		Timeout:       2 * time.Second,
		StoreRetry:    300 * time.Millisecond,
		Grace:         time.Millisecond,
		AckWait:       ackWait,
	}, notifier.Deps{Store: st, JS: js, Metrics: m, Logger: h.log})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.spawn("notifier", n.Run, nc, st, m)
}

// kill stops the worker abruptly: its NATS connection is closed at once (no
// drain, so nothing in flight is acked), its context cancelled with a 1 ms
// grace. Its store handle is closed once it has returned.
func (p *proc) kill(t *testing.T) {
	p.once.Do(func() {
		p.nc.Close()
		p.cancel()
		select {
		case err := <-p.done:
			if err != nil {
				t.Logf("%s stopped with: %v", p.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s of its context ending", p.name)
		}
		p.st.Close()
	})
}

// killFetcher / restartFetcher (and the notifier's) swap the current proc.
func (h *harness) killFetcher() {
	h.procMu.Lock()
	p := h.tf
	h.procMu.Unlock()
	p.kill(h.t)
}

func (h *harness) restartFetcher() {
	p := h.startFetcher()
	h.procMu.Lock()
	h.tf = p
	h.procMu.Unlock()
}

func (h *harness) killNotifier() {
	h.procMu.Lock()
	p := h.nt
	h.procMu.Unlock()
	p.kill(h.t)
}

func (h *harness) restartNotifier() {
	p := h.startNotifier()
	h.procMu.Lock()
	h.nt = p
	h.procMu.Unlock()
}

// ---- Postgres proxy ----

// tcpProxy forwards a fixed local port to Postgres; cut closes the listener
// and every connection, restore listens on the same port again.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(ln, c)
	}
}

func (p *tcpProxy) track(ln net.Listener, cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln { // cut since this connection was accepted
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpProxy) forward(ln net.Listener, c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(ln, c, up) {
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err = net.Listen("tcp", p.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

// ---- the merchant ----

// push is one push as the merchant saw it.
type push struct {
	form      map[string]string
	eventID   string
	attempt   int
	at        time.Time
	answered  int
	validSign bool
}

// merchant records every push on a fixed port; it can answer 503 or be
// taken down (connection refused) and brought back on the same port.
type merchant struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	srv  *http.Server
	got  []push
	fail atomic.Bool // answer 503
	// hold, while set, keeps every push waiting for an answer until it is
	// closed; held counts the pushes waiting.
	hold atomic.Pointer[chan struct{}]
	held atomic.Int32
}

// holdAnswers makes pushes wait for their answer until the returned func is
// called: a notifier stopped meanwhile is caught with pushes in flight.
func (m *merchant) holdAnswers() (release func()) {
	ch := make(chan struct{})
	m.hold.Store(&ch)
	return func() {
		m.hold.Store(nil)
		close(ch)
	}
}

func newMerchant(t *testing.T) *merchant {
	m := &merchant{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	m.up()
	t.Cleanup(m.down)
	return m
}

func (m *merchant) url() string { return "http://" + m.addr + "/notify" }

func (m *merchant) up() {
	m.t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err = net.Listen("tcp", m.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		m.t.Fatalf("merchant: listen on %s: %v", m.addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(m.serve), ReadHeaderTimeout: 5 * time.Second}
	m.mu.Lock()
	m.srv = srv
	m.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every connection: the notifier meets
// "connection refused" until up.
func (m *merchant) down() {
	m.mu.Lock()
	srv := m.srv
	m.srv = nil
	m.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (m *merchant) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p := push{form: map[string]string{}, eventID: r.Header.Get("X-Yzpay-Event-Id"), at: time.Now()}
	p.attempt, _ = strconv.Atoi(r.Header.Get("X-Yzpay-Attempt"))
	for k := range r.PostForm {
		p.form[k] = r.PostForm.Get(k)
	}
	p.validSign = p.form["sign"] != "" && p.form["sign"] == wantSign(p.form)
	switch {
	case !p.validSign:
		p.answered = http.StatusUnauthorized
	case m.fail.Load():
		p.answered = http.StatusServiceUnavailable
	default:
		p.answered = http.StatusOK
	}
	if ch := m.hold.Load(); ch != nil {
		m.held.Add(1)
		select {
		case <-*ch:
		case <-r.Context().Done():
		}
		m.held.Add(-1)
	}
	time.Sleep(merchantDelay) // a real merchant takes a moment
	m.mu.Lock()
	m.got = append(m.got, p)
	m.mu.Unlock()
	w.WriteHeader(p.answered)
	_, _ = w.Write([]byte("success"))
}

func (m *merchant) pushes() []push {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]push(nil), m.got...)
}

// wantSign recomputes the documented sign independently of the product:
// md5(time|tradeNo|orderId|payment|status|secret).
func wantSign(f map[string]string) string {
	s := f["time"] + "|" + f["tradeNo"] + "|" + f["orderId"] + "|" + f["payment"] + "|" + f["status"] + "|" + selfSecret
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ---- the payment stream ----

type payment struct {
	orderID string
	price   int64
	buyer   string
	qrID    int64
	tid     string
	paidAt  time.Time
	err     error
}

type stream struct {
	pays      []*payment
	paid      atomic.Int64 // payments made so far
	qrRetries atomic.Int64 // QR creations the merchant had to retry
	done      chan struct{}
}

// startStream creates and pays n orders at a steady pace, each in its own
// goroutine so that a stalled QR creation (a fault) does not slow the pace.
// A failed QR creation is retried with the same order_id, as a merchant would.
func (h *harness) startStream(n int) *stream {
	s := &stream{done: make(chan struct{})}
	prefix := strings.ReplaceAll(strings.ToLower(h.t.Name()), "/", "-")
	for i := range n {
		s.pays = append(s.pays, &payment{
			orderID: fmt.Sprintf("%s-%03d", prefix, i),
			price:   int64(100 + i),
			buyer:   strconv.Itoa(700000 + i),
		})
	}
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		tick := time.NewTicker(payEvery)
		defer tick.Stop()
		for _, p := range s.pays {
			select {
			case <-tick.C:
			case <-h.ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.payOne(s, p)
			}()
		}
		wg.Wait()
	}()
	return s
}

func (h *harness) payOne(s *stream, p *payment) {
	start := time.Now()
	for {
		qrID, err := h.createQR(p)
		if err == nil {
			p.qrID = qrID
			break
		}
		if time.Since(start) > time.Minute || h.ctx.Err() != nil {
			p.err = fmt.Errorf("create QR for %s: %w", p.orderID, err)
			return
		}
		s.qrRetries.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
	tr, err := h.sb.Pay(h.ctx, p.qrID, sandbox.PayOptions{BuyerID: p.buyer, PayType: "WEIXIN_DAIXIAO"})
	if err != nil {
		p.err = fmt.Errorf("pay %s: %w", p.orderID, err)
		return
	}
	p.tid, p.paidAt = tr.TID, time.Now()
	s.paid.Add(1)
}

var client = &http.Client{Timeout: 30 * time.Second}

func (h *harness) createQR(p *payment) (int64, error) {
	return h.createQRCtx(h.ctx, p)
}

func (h *harness) createQRCtx(ctx context.Context, p *payment) (int64, error) {
	body, _ := json.Marshal(map[string]any{"name": "order " + p.orderID, "price": p.price, "order_id": p.orderID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.gw.url+"/api/payment/qrcode", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var q struct {
		QRID int64 `json:"qr_id"`
	}
	if err := json.Unmarshal(b, &q); err != nil || q.QRID == 0 {
		return 0, fmt.Errorf("bad QR answer %s", b)
	}
	return q.QRID, nil
}

// waitPaid waits until at least n payments were made.
func (s *stream) waitPaid(t *testing.T, n int) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("%d payments made", n), func() bool { return s.paid.Load() >= int64(n) })
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// ---- the ledger ----

type ledger struct {
	name                     string
	sent, delivered, missing int
	duplicates, rejected     int
	recovery                 time.Duration
	maxAttempt               int
	firstAccepted            map[string]push // event id -> first push answered 2xx
}

var allowedStatus = map[string]bool{
	sandbox.StatusWaitBuyerPay: true, sandbox.StatusTradePaid: true, sandbox.StatusTradeSuccess: true,
}

// settle waits (condition + deadline) until every payment's order stands at
// TRADE_SUCCESS in the store and the merchant accepted a correctly signed
// TRADE_SUCCESS push for it, then until both consumers are idle; it checks
// every push against the sandbox's trades, prints the ledger line and fails
// the test when a payment is missing. faultEnd is when the fault was lifted.
func (h *harness) settle(name string, s *stream, faultEnd time.Time) ledger {
	t := h.t
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("payment stream did not finish")
	}
	for _, p := range s.pays {
		if p.err != nil {
			t.Errorf("payment not made: %v", p.err)
		}
	}
	complete := func() bool {
		acc := h.acceptedSuccess()
		for _, p := range s.pays {
			if p.tid == "" {
				continue
			}
			if _, ok := acc[p.tid+":"+sandbox.StatusTradeSuccess]; !ok {
				return false
			}
		}
		return h.storeMissing(s) == 0
	}
	if !poll(ledgerMax, complete) {
		t.Errorf("not every payment delivered within %s", ledgerMax)
	} else if !poll(30*time.Second, h.idle) {
		t.Errorf("consumers not idle 30s after every payment was delivered")
	}

	l := ledger{name: name, sent: len(s.pays), firstAccepted: h.acceptedSuccess()}
	pays := map[string]*payment{}
	for _, p := range s.pays {
		pays[p.orderID] = p
		if p.tid == "" {
			l.missing++
			continue
		}
		f, ok := l.firstAccepted[p.tid+":"+sandbox.StatusTradeSuccess]
		if !ok {
			l.missing++
			continue
		}
		l.delivered++
		if !faultEnd.IsZero() && p.paidAt.Before(faultEnd) {
			l.recovery = max(l.recovery, f.at.Sub(faultEnd))
		}
	}
	if n := h.storeMissing(s); n > 0 {
		t.Errorf("%d orders are not at TRADE_SUCCESS in the store", n)
		l.missing = max(l.missing, n)
	}

	// Every push: signed right, about a real order, for a status its
	// trade went through, with the trade's own numbers.
	accepted := map[string]int{}
	for _, p := range h.merchant.pushes() {
		l.maxAttempt = max(l.maxAttempt, p.attempt)
		if !p.validSign {
			t.Errorf("push with a wrong sign: %v", p.form)
		}
		if p.answered/100 != 2 {
			l.rejected++
		} else {
			accepted[p.eventID]++
		}
		pay := pays[p.form["orderId"]]
		status := p.form["status"]
		switch {
		case pay == nil:
			t.Errorf("push for an order nobody made: %v", p.form)
			continue
		case !allowedStatus[status]:
			t.Errorf("push for status %s the trade never had: %v", status, p.form)
			continue
		}
		if want := pay.tid + "-" + strconv.FormatInt(pay.qrID, 10); p.form["tradeNo"] != want {
			t.Errorf("push tradeNo %q, want %q", p.form["tradeNo"], want)
		}
		if want := pay.tid + ":" + status; p.eventID != want {
			t.Errorf("push event id %q, want %q", p.eventID, want)
		}
		wantPay := strconv.FormatInt(pay.price, 10)
		if status == sandbox.StatusWaitBuyerPay {
			wantPay = "0"
		}
		if p.form["payment"] != wantPay {
			t.Errorf("push for %s %s carries payment %s, want %s", pay.orderID, status, p.form["payment"], wantPay)
		}
		if status != sandbox.StatusWaitBuyerPay && p.form["uuid"] != pay.buyer {
			t.Errorf("push for %s carries uuid %q, want %q", pay.orderID, p.form["uuid"], pay.buyer)
		}
	}
	for _, n := range accepted {
		l.duplicates += n - 1
	}
	line := fmt.Sprintf("fault=%s sent=%d delivered=%d missing=%d duplicates=%d recovery=%s rejected=%d max_attempt=%d qr_retries=%d",
		l.name, l.sent, l.delivered, l.missing, l.duplicates, l.recovery.Round(time.Millisecond), l.rejected, l.maxAttempt, s.qrRetries.Load())
	t.Log(line)
	fmt.Println(line)
	appendLedger(t, line)
	if l.missing > 0 {
		t.Errorf("fault %s: %d payments missing", name, l.missing)
	}
	return l
}

// appendLedger adds line to the file named by YZPAY_LEDGER_FILE, if set:
// `go test` shows nothing of a passing package, and `make test` prints
// this file at the end so every run reports its ledgers.
func appendLedger(t *testing.T, line string) {
	path := os.Getenv("YZPAY_LEDGER_FILE")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("ledger file: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// acceptedSuccess maps event id to the first TRADE_SUCCESS push the
// merchant accepted with a valid sign.
func (h *harness) acceptedSuccess() map[string]push {
	out := map[string]push{}
	for _, p := range h.merchant.pushes() {
		if p.answered/100 != 2 || !p.validSign || p.form["status"] != sandbox.StatusTradeSuccess {
			continue
		}
		if _, ok := out[p.eventID]; !ok {
			out[p.eventID] = p
		}
	}
	return out
}

// storeMissing counts payments whose order is not at TRADE_SUCCESS with the
// trade's tid and price, reading the store directly (not through the proxy).
func (h *harness) storeMissing(s *stream) int {
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	orders, err := h.st.ListOrders(ctx, store.OrderFilter{Status: domain.StatusTradeSuccess, Limit: 1000})
	if err != nil {
		return len(s.pays)
	}
	ok := map[string]bool{}
	for _, o := range orders {
		ok[o.OrderID+"|"+o.TID+"|"+strconv.FormatInt(o.Payment, 10)] = true
	}
	n := 0
	for _, p := range s.pays {
		if !ok[p.orderID+"|"+p.tid+"|"+strconv.FormatInt(p.price, 10)] {
			n++
		}
	}
	return n
}

// waitBusy waits until the durable consumer has messages delivered and not
// yet acked, so that a kill catches work in flight.
func (h *harness) waitBusy(streamName, durable string) {
	h.t.Helper()
	eventually(h.t, 20*time.Second, durable+" holding unacked messages", func() bool {
		ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
		defer cancel()
		cons, err := h.js.Consumer(ctx, streamName, durable)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending > 0
	})
}

// idle reports whether both consumers have nothing pending or unacked.
func (h *harness) idle() bool {
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
	defer cancel()
	for _, c := range []struct{ stream, name string }{
		{natsjs.WebhookStream, natsjs.TradefetcherDurable}, {natsjs.PaymentStream, natsjs.NotifierDurable},
	} {
		cons, err := h.js.Consumer(ctx, c.stream, c.name)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
			return false
		}
	}
	return true
}

// counter sums a counter family's series whose labels include want.
func counter(m *metrics.Metrics, name string, want map[string]string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, mm := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range mm.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += mm.GetCounter().GetValue()
		}
	}
	return sum
}

// get answers the status code of a GET on the gateway.
func (h *harness) get(path string) int {
	req, _ := http.NewRequestWithContext(h.ctx, http.MethodGet, h.gw.url+path, nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// postAdmin POSTs to the admin API.
func (h *harness) postAdmin(path string) (int, string, error) {
	req, _ := http.NewRequestWithContext(h.ctx, http.MethodPost, h.gw.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}
