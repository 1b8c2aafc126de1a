package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/servicetest"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store/sqlite"
	"github.com/yzpay/yzpay/shared/youzan"
)

const (
	apiKey       = "test-api-key"
	adminKey     = "test-admin-key"
	clientID     = "test_client_id"
	clientSecret = "test_client_secret"
)

// fakeYouzan is the gateway's QRCreator port: it hands out QR ids from 1000
// on, or fails with err while err is set. With block set, calls wait until
// it is closed.
type fakeYouzan struct {
	mu    sync.Mutex
	err   error
	block chan struct{}
	calls []qrCall
}

type qrCall struct {
	Name  string
	Price int64
}

func (f *fakeYouzan) CreateQRCode(ctx context.Context, name string, price int64) (youzan.QRCode, error) {
	f.mu.Lock()
	f.calls = append(f.calls, qrCall{name, price})
	n, err, block := len(f.calls), f.err, f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return youzan.QRCode{}, ctx.Err()
		}
	}
	if err != nil {
		return youzan.QRCode{}, err
	}
	id := int64(1000 + n)
	return youzan.QRCode{ID: id, URL: fmt.Sprintf("https://pay.example/qr/%d?a=1&b=2", id)}, nil
}

func (f *fakeYouzan) setErr(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

func (f *fakeYouzan) Calls() []qrCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]qrCall(nil), f.calls...)
}

// env is one gateway on a real SQLite store and a real in-process JetStream.
type env struct {
	t      *testing.T
	gw     *gateway.Gateway
	h      http.Handler
	store  *sqlite.Store
	js     jetstream.JetStream
	youzan *fakeYouzan
	// stopBroker shuts the JetStream server down for good.
	stopBroker func()
}

type option func(*config.Gateway, *gateway.Deps)

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	b := servicetest.Start(t)
	st, nc, js, shutdown := b.Store, b.Conn, b.JS, b.StopBroker
	yz := &fakeYouzan{}
	cfg := config.Gateway{
		APIKey: apiKey,
		Youzan: config.Youzan{ClientID: clientID, ClientSecret: clientSecret},
		// A claim left behind by a failed Youzan call would block a retry
		// for this long: long enough that a test would notice.
		ClaimFor:       time.Hour,
		PublishTimeout: 500 * time.Millisecond,
	}
	deps := gateway.Deps{
		Store: st, JS: js, Youzan: yz, Metrics: metrics.New(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Checks: []httpapi.Check{{Name: "nats", Fn: natsjs.Ping(nc, js)}, {Name: "store", Fn: st.Ping}},
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	g, err := gateway.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, gw: g, h: g.Handler(), store: st, js: js, youzan: yz, stopBroker: shutdown}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) errorCode() string {
	var b httpapi.ErrorBody
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

func (e *env) do(method, path string, body []byte, header http.Header) response {
	e.t.Helper()
	// A merchant gives up after a while too; a request stuck behind a
	// claim fails the test in seconds instead of the gateway's 15.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

func bearer(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
}

type qrAnswer struct {
	QRID    int64  `json:"qr_id"`
	QRURL   string `json:"qr_url"`
	QRCode  string `json:"qr_code"`
	OrderID string `json:"order_id"`
	Price   int64  `json:"price"`
	Status  string `json:"status"`
}

// createQR posts body as the merchant would.
func (e *env) createQR(body string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/api/payment/qrcode", []byte(body), bearer(apiKey))
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", r.Status, err, r.Body)
	}
	return v
}

// orderExists reports whether the store holds orderID.
func (e *env) orderExists(orderID string) bool {
	e.t.Helper()
	_, err := e.store.OrderByID(context.Background(), orderID)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// pushBody is a Youzan trade push as it arrives, msg URL-encoded.
func pushBody(typ, tid, status, msgID string) (body []byte, rawMsg string) {
	msg, _ := json.Marshal(map[string]any{"tid": tid, "status": status})
	rawMsg = url.QueryEscape(string(msg))
	body, _ = json.Marshal(map[string]any{
		"client_id": clientID, "id": tid, "kdt_id": 43886321, "type": typ, "status": status,
		"msg": rawMsg, "msg_id": msgID, "version": 1641009600, "sendCount": 0, "test": false, "mode": 1,
	})
	return body, rawMsg
}

// eventSign is Youzan's Event-Sign header, computed here from the documented
// formula rather than by the code under test: md5(client_id + body + secret).
func eventSign(body []byte, secret string) string {
	sum := md5.Sum(append(append([]byte(clientID), body...), secret...))
	return hex.EncodeToString(sum[:])
}

func (e *env) push(body []byte, header http.Header) response {
	e.t.Helper()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json")
	return e.do(http.MethodPost, "/api/status", body, header)
}

// receipts returns every message the gateway stored in the webhook stream.
func (e *env) receipts() []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, natsjs.WebhookStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// msgID is the JetStream de-duplication id a receipt was stored under.
func msgID(m *jetstream.RawStreamMsg) string { return m.Header.Get(nats.MsgIdHdr) }

// eventually waits until cond holds, failing the test after 10 s.
var eventually = servicetest.Eventually
