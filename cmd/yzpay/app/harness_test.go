package app_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/cmd/yzpay/app"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/natsjs/embedded"
	"github.com/yzpay/yzpay/shared/store/postgres/postgrestest"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

const selfSecret = "test_self_secret"

// received is one push as the merchant saw it.
type received struct {
	Form    map[string]string
	EventID string
	Attempt int
	At      time.Time
}

// merchant is a test merchant server; fail decides the HTTP status per call.
type merchant struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []received
	fail func(r received, n int) int // n = calls so far for this event, 1-based
	perE map[string]int
}

func newMerchant(t *testing.T, fail func(received, int) int) *merchant {
	m := &merchant{fail: fail, perE: map[string]int{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", 400)
			return
		}
		rc := received{Form: map[string]string{}, EventID: r.Header.Get("X-Yzpay-Event-Id"), At: time.Now()}
		rc.Attempt, _ = strconv.Atoi(r.Header.Get("X-Yzpay-Attempt"))
		for k := range r.PostForm {
			rc.Form[k] = r.PostForm.Get(k)
		}
		m.mu.Lock()
		m.perE[rc.EventID]++
		n := m.perE[rc.EventID]
		m.got = append(m.got, rc)
		m.mu.Unlock()
		status := 200
		if m.fail != nil {
			status = m.fail(rc, n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *merchant) pushes() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.got...)
}

func (m *merchant) find(orderID, status string) []received {
	var out []received
	for _, r := range m.pushes() {
		if r.Form["orderId"] == orderID && (status == "" || r.Form["status"] == status) {
			out = append(out, r)
		}
	}
	return out
}

// wantSign recomputes the merchant sign from the documented formula,
// independently of the code under test.
func wantSign(f map[string]string) string {
	s := f["time"] + "|" + f["tradeNo"] + "|" + f["orderId"] + "|" + f["payment"] + "|" + f["status"] + "|" + selfSecret
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type harness struct {
	t    *testing.T
	app  *app.App
	nats *embedded.Server
	key  string
}

type opts struct {
	endpoints []string
	env       map[string]string
	sandbox   sandbox.Config
}

// start runs the whole pipeline on a fresh Postgres database, a fresh
// embedded JetStream server (over TCP, as the split services use NATS) and
// the sandbox in-process.
func start(t *testing.T, o opts) *harness {
	t.Helper()
	dbURL := postgrestest.NewDatabase(t)
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Listen: true, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	env := map[string]string{
		"DATABASE_URL":    dbURL,
		"NATS_URL":        ns.ClientURL(),
		"GATEWAY_ADDR":    "127.0.0.1:0",
		"GATEWAY_API_KEY": "test-key",
		"SELF_SECRET":     selfSecret,
		// The merchant checks signs with selfSecret.
		"SANDBOX_USE_SELF_SECRET": "1",
		"PUSH_API":                strings.Join(o.endpoints, ";"),
		"PUSH_RETRY_SCHEDULE":     "50ms,50ms,50ms",
		"FETCH_RETRY_SCHEDULE":    "20ms,50ms,100ms",
		"DATA_DIR":                t.TempDir(),
	}
	for k, v := range o.env {
		env[k] = v
	}
	sc := o.sandbox
	if sc.RetryScale == 0 {
		sc.RetryScale = 0.001
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, app.Options{Env: config.FromMap(env), Sandbox: true, Logger: log, SandboxConfig: sc,
		SandboxExternalBackends: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := a.Stop(); err != nil {
			t.Errorf("app stopped with error: %v", err)
		}
	})
	return &harness{t: t, app: a, nats: ns, key: env["GATEWAY_API_KEY"]}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type qrAnswer struct {
	QRID    int64  `json:"qr_id"`
	QRURL   string `json:"qr_url"`
	QRCode  string `json:"qr_code"`
	OrderID string `json:"order_id"`
	Price   int64  `json:"price"`
	Status  string `json:"status"`
}

func (h *harness) do(method, path string, body any, auth bool) (*http.Response, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		case string:
			rd = strings.NewReader(b)
		default:
			js, _ := json.Marshal(b)
			rd = bytes.NewReader(js)
		}
	}
	req, _ := http.NewRequest(method, h.app.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.Header.Set("Authorization", "Bearer "+h.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (h *harness) createQR(orderID string, price int64) qrAnswer {
	h.t.Helper()
	resp, body := h.do("POST", "/api/payment/qrcode", map[string]any{"name": "order " + orderID, "price": price, "order_id": orderID}, true)
	if resp.StatusCode != 200 {
		h.t.Fatalf("create QR: %d %s", resp.StatusCode, body)
	}
	var q qrAnswer
	if err := json.Unmarshal(body, &q); err != nil {
		h.t.Fatal(err)
	}
	return q
}

func (h *harness) pay(qrID int64, buyer string) {
	h.t.Helper()
	resp, body := h.do("POST", fmt.Sprintf("/sandbox/qrcodes/%d/pay", qrID), map[string]string{"pay_type": "WEIXIN_DAIXIAO", "buyer_id": buyer}, false)
	if resp.StatusCode != 200 {
		h.t.Fatalf("pay: %d %s", resp.StatusCode, body)
	}
}

// postPush posts a Youzan push body to the gateway as Youzan would.
func (h *harness) postPush(body []byte, hdr http.Header) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.app.URL+"/api/status", bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// idle reports whether both consumers have nothing pending or unacked.
func (h *harness) idle() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, c := range []struct{ stream, name string }{
		{natsjs.WebhookStream, natsjs.TradefetcherDurable}, {natsjs.PaymentStream, natsjs.NotifierDurable},
	} {
		cons, err := h.app.JS.Consumer(ctx, c.stream, c.name)
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

func (h *harness) streamMsgs(name string) uint64 {
	h.t.Helper()
	s, err := h.app.JS.Stream(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// subscribe is another internal consumer of payment-status natsjs.
func (h *harness) subscribe() func() []domain.PaymentEvent {
	h.t.Helper()
	ctx := context.Background()
	cons, err := h.app.JS.OrderedConsumer(ctx, natsjs.PaymentStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{natsjs.StatusSubjects}})
	if err != nil {
		h.t.Fatal(err)
	}
	var mu sync.Mutex
	var got []domain.PaymentEvent
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e, err := domain.Decode(m.Data())
		if err != nil {
			h.t.Errorf("subscriber got a bad event: %v", err)
			return
		}
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(cc.Stop)
	return func() []domain.PaymentEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]domain.PaymentEvent(nil), got...)
	}
}

// sampleCount is the number of observations of the histogram name.
func (h *harness) sampleCount(name string) uint64 {
	h.t.Helper()
	mfs, err := h.app.Metrics.Registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	h.t.Fatalf("no metric %s", name)
	return 0
}
