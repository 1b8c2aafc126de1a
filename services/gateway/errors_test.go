package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan"
	"github.com/yzpay/yzpay/shared/youzan/push"
)

// The fakes embed the interfaces they stand in for: a call the test did not
// expect panics, which Instrument turns into a 500 the case then fails on.

type fakeStore struct {
	store.Store
	reserveErr  error
	orderErr    error
	orderPanic  bool
	listErr     error
	attachedURL string
}

func (s *fakeStore) Reserve(context.Context, domain.NewOrder, time.Duration) (store.Reservation, error) {
	if s.reserveErr != nil {
		return store.Reservation{}, s.reserveErr
	}
	return store.Reservation{Claimed: true, ClaimToken: "tok"}, nil
}

func (s *fakeStore) ReleaseClaim(context.Context, string, string) error { return nil }

func (s *fakeStore) AttachQR(_ context.Context, id string, qr domain.QRCode) (domain.Order, error) {
	return domain.Order{OrderID: id, QRID: qr.ID, QRURL: s.attachedURL}, nil
}

func (s *fakeStore) AttachQRAndCheckout(_ context.Context, qr domain.QRCode, c domain.Checkout) (domain.Order, domain.Checkout, error) {
	return domain.Order{OrderID: c.OrderID, QRID: qr.ID, QRURL: s.attachedURL}, c, nil
}

func (s *fakeStore) OrderByID(context.Context, string) (domain.Order, error) {
	if s.orderPanic {
		panic("store bug")
	}
	return domain.Order{}, s.orderErr
}

func (s *fakeStore) ListDeliveries(context.Context, store.DeliveryFilter) ([]domain.Delivery, error) {
	return nil, s.listErr
}

type fakeYouzan struct{ err error }

func (y fakeYouzan) CreateQRCode(context.Context, string, int64) (youzan.QRCode, error) {
	if y.err != nil {
		return youzan.QRCode{}, y.err
	}
	return youzan.QRCode{ID: 7, URL: "u"}, nil
}

type fakeJS struct {
	jetstream.JetStream
	err error
}

func (j fakeJS) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if j.err != nil {
		return nil, j.err
	}
	return &jetstream.PubAck{}, nil
}

type fakeReplayer struct{ err error }

func (r fakeReplayer) Replay(context.Context, string, string) ([]domain.Delivery, error) {
	return nil, r.err
}

type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

const (
	testClientID = "cid"
	testSecret   = "csecret"
	apiKey       = "k-api"
	adminKey     = "k-admin"
)

type errCase struct {
	name    string
	st      fakeStore
	yz      fakeYouzan
	js      fakeJS
	replay  Replayer
	busy    bool
	method  string
	path    string
	body    io.Reader
	header  http.Header
	status  int
	code    string
	message string
	// wantHeader lists response headers the answer must carry.
	wantHeader map[string]string
}

func signedPush(body string) (io.Reader, http.Header) {
	h := http.Header{}
	h.Set("Event-Sign", push.EventSign(testClientID, []byte(body), testSecret))
	return strings.NewReader(body), h
}

func bearer(key string) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	return h
}

func qr(body string) io.Reader { return strings.NewReader(body) }

// errorCases pins every error answer of the gateway as clients see it:
// status, code, message and the headers that go with them.
func errorCases() []errCase {
	noTID, noTIDHeader := signedPush(`{"type":"TRADE_ORDER_STATE","status":"TRADE_SUCCESS","kdt_id":1}`)
	goodBody := `{"type":"TRADE_ORDER_STATE","id":"E20240101120000000000001","status":"TRADE_SUCCESS","kdt_id":1}`
	good, goodHeader := signedPush(goodBody)
	good2, _ := signedPush(goodBody)
	badTID, badTIDHeader := signedPush(`{"type":"TRADE_ORDER_STATE","id":"E1\u001b[2J","status":"TRADE_SUCCESS","kdt_id":1}`)
	// Body-signed: the sign covers msg only, whose tid is not the id.
	msg := `%7B%22tid%22%3A%22E20240101120000000000001%22%7D`
	mismatch := qr(`{"type":"trade_TradeSuccess","id":"E20240101120000000000002","status":"TRADE_SUCCESS","msg":"` + msg +
		`","sign":"` + push.BodySign(testClientID, msg, testSecret) + `"}`)
	badSign := http.Header{}
	badSign.Set("Event-Sign", strings.Repeat("0", 32))
	order := `{"name":"n","price":1,"order_id":"o-1"}`
	return []errCase{
		{name: "no route", method: "GET", path: "/nope",
			status: 404, code: "not_found", message: "no such route"},
		{name: "wrong method", method: "GET", path: "/api/payment/qrcode",
			status: 405, code: "method_not_allowed", message: "method not allowed on this route"},
		{name: "no key", method: "POST", path: "/api/payment/qrcode", body: qr(order),
			status: 401, code: "unauthorized", message: "missing or wrong bearer key",
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="yzpay"`}},
		{name: "admin key on merchant route", method: "POST", path: "/api/payment/qrcode", body: qr(order), header: bearer(adminKey),
			status: 401, code: "unauthorized", message: "missing or wrong bearer key"},
		{name: "qr body too large", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey),
			body:   qr(`{"name":"` + strings.Repeat("x", 64<<10) + `"}`),
			status: 413, code: "body_too_large", message: "request body exceeds 64 KiB"},
		{name: "qr body unreadable", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: failingBody{},
			status: 400, code: "bad_body", message: "could not read request body"},
		{name: "not json", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`nope`),
			status: 400, code: "malformed_json", message: "request body must be a JSON object"},
		{name: "two objects", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(order + order),
			status: 400, code: "malformed_json", message: "request body must be a single JSON object"},
		{name: "no name", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`{"price":1,"order_id":"o"}`),
			status: 400, code: "invalid_name", message: "name is required"},
		{name: "blank name", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`{"name":"  ","price":1,"order_id":"o"}`),
			status: 400, code: "invalid_name", message: "name must be 1 to 100 characters after trimming"},
		{name: "NUL in name", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`{"name":"a\u0000b","price":1,"order_id":"o"}`),
			status: 400, code: "invalid_name", message: "name must be valid UTF-8 without control characters"},
		{name: "newline in name", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`{"name":"a\nb","price":1,"order_id":"o"}`),
			status: 400, code: "invalid_name", message: "name must be valid UTF-8 without control characters"},
		{name: "no price", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`{"name":"n","order_id":"o"}`),
			status: 400, code: "invalid_price", message: "price is required (integer fen)"},
		{name: "fractional price", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`{"name":"n","price":1.5,"order_id":"o"}`),
			status: 400, code: "invalid_price", message: "price must be a JSON integer number of fen from 1 to 10000000"},
		{name: "bad order id", method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(`{"name":"n","price":1,"order_id":"a b"}`),
			status: 400, code: "invalid_order_id", message: "order_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -"},
		{name: "conflict", st: fakeStore{reserveErr: fmt.Errorf("order %q: %w", "o-1", domain.ErrConflict)},
			method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(order),
			status: 409, code: "order_conflict", message: "order_id exists with a different name or price"},
		{name: "youzan retryable", yz: fakeYouzan{err: &youzan.Error{API: "qr.create", Kind: youzan.RateLimited, Message: "请求被限流"}},
			method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(order),
			status: 502, code: "youzan_unavailable", message: "Youzan did not answer in time or is rate limiting; retry the same request"},
		{name: "youzan refuses", yz: fakeYouzan{err: fmt.Errorf("create: %w", &youzan.Error{API: "qr.create", Kind: youzan.Business, Message: "shop closed"})},
			method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(order),
			status: 502, code: "youzan_error", message: "Youzan refused the request: shop closed"},
		{name: "deadline", st: fakeStore{reserveErr: fmt.Errorf("reserve: %w", context.DeadlineExceeded)},
			method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(order),
			status: 503, code: "timeout", message: "timed out; retry the same request"},
		{name: "store down", st: fakeStore{reserveErr: errors.New("dial postgres://yzpay:hunter2@db/yzpay: refused")},
			method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(order),
			status: 503, code: "unavailable", message: "a backend is unavailable; retry the same request"},
		{name: "qr not drawable", st: fakeStore{attachedURL: ""},
			method: "POST", path: "/api/payment/qrcode", header: bearer(apiKey), body: qr(order),
			status: 500, code: "qr_render_failed", message: "could not render the QR image"},
		{name: "get bad id", method: "GET", path: "/api/payment/orders/a*b", header: bearer(apiKey),
			status: 400, code: "invalid_order_id", message: "order_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -"},
		{name: "get missing", st: fakeStore{orderErr: fmt.Errorf("sqlite store: order with id x: %w", domain.ErrNotFound)},
			method: "GET", path: "/api/payment/orders/x", header: bearer(apiKey),
			status: 404, code: "order_not_found", message: "no such order"},
		{name: "panic", st: fakeStore{orderPanic: true}, method: "GET", path: "/api/payment/orders/x", header: bearer(apiKey),
			status: 500, code: "internal", message: "internal error"},
		{name: "push busy", busy: true, method: "POST", path: "/api/status", body: good, header: goodHeader,
			status: 503, code: "busy", message: "too many pushes in flight; retry later",
			wantHeader: map[string]string{"Retry-After": "5", "Connection": "close"}},
		// With every slot taken the body is not even read: a body that
		// fails when read still gets busy, not bad_body.
		{name: "push busy before reading", busy: true, method: "POST", path: "/api/status", body: failingBody{},
			status: 503, code: "busy", message: "too many pushes in flight; retry later",
			wantHeader: map[string]string{"Retry-After": "5", "Connection": "close"}},
		{name: "push too large", method: "POST", path: "/api/status", body: qr(strings.Repeat(" ", 64<<10+1)),
			status: 413, code: "body_too_large", message: "push body exceeds 64 KiB"},
		{name: "push bad tid", method: "POST", path: "/api/status", body: badTID, header: badTIDHeader,
			status: 400, code: "invalid_trade_id", message: "trade id must be E followed by 23 digits"},
		{name: "push fields mismatch", method: "POST", path: "/api/status", body: mismatch,
			status: 401, code: "push_fields_mismatch", message: "push fields disagree with its signed msg: id differs from the signed msg's tid"},
		{name: "push unreadable", method: "POST", path: "/api/status", body: failingBody{},
			status: 400, code: "bad_body", message: "could not read push body"},
		{name: "push forged", method: "POST", path: "/api/status", body: qr(`{"type":"TRADE_ORDER_STATE","id":"T1"}`), header: badSign,
			status: 401, code: "bad_signature", message: "push signature does not verify"},
		{name: "push not json", method: "POST", path: "/api/status", body: qr(`<xml/>`),
			status: 400, code: "malformed_push", message: "push body is not a Youzan message"},
		{name: "push without tid", method: "POST", path: "/api/status", body: noTID, header: noTIDHeader,
			status: 400, code: "malformed_push", message: "trade push without an id"},
		{name: "push broker down", js: fakeJS{err: errors.New("nats: no responders")},
			method: "POST", path: "/api/status", body: good2, header: goodHeader,
			status: 503, code: "broker_unavailable", message: "receipt could not be stored; retry later"},
		{name: "admin no key", method: "GET", path: "/api/admin/deliveries",
			status: 401, code: "unauthorized", message: "missing or wrong bearer key"},
		{name: "admin bad state", method: "GET", path: "/api/admin/deliveries?state=lost", header: bearer(adminKey),
			status: 400, code: "invalid_state", message: "state must be pending, delivered, failed or superseded"},
		{name: "admin bad limit", method: "GET", path: "/api/admin/deliveries?limit=0", header: bearer(adminKey),
			status: 400, code: "invalid_limit", message: "limit must be 1 to 1000"},
		{name: "admin list store down", st: fakeStore{listErr: errors.New("db gone")},
			method: "GET", path: "/api/admin/deliveries", header: bearer(adminKey),
			status: 503, code: "unavailable", message: "a backend is unavailable; retry the same request"},
		{name: "replay not wired", method: "POST", path: "/api/admin/deliveries/ev-1/replay", header: bearer(adminKey),
			status: 501, code: "replay_unavailable", message: "replay is not wired in this process"},
		{name: "replay nothing", replay: fakeReplayer{err: replay.ErrNothingToReplay},
			method: "POST", path: "/api/admin/deliveries/ev-1/replay", header: bearer(adminKey),
			status: 404, code: "delivery_not_found", message: "no delivery recorded for that event (and endpoint)"},
		{name: "replay store down", replay: fakeReplayer{err: fmt.Errorf("replay ev-1: %w", errors.New("db gone"))},
			method: "POST", path: "/api/admin/deliveries/ev-1/replay", header: bearer(adminKey),
			status: 503, code: "unavailable", message: "a backend is unavailable; retry the same request"},
	}
}

func apiErrorCount(t *testing.T, m *metrics.Metrics, code string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "yzpay_api_errors_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Every error answer keeps its status, code, message and headers, and is
// counted once under its code.
func TestErrorAnswers(t *testing.T) {
	for _, c := range errorCases() {
		t.Run(c.name, func(t *testing.T) {
			m := metrics.New()
			st := c.st
			js := c.js
			g, err := New(config.Gateway{
				Youzan: config.Youzan{ClientID: testClientID, ClientSecret: testSecret},
				APIKey: apiKey, AdminKey: adminKey, MaxConcurrentPushes: 1,
			}, Deps{Store: &st, JS: js, Youzan: c.yz, Metrics: m, Replayer: c.replay,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if c.busy {
				g.pushes <- struct{}{}
			}
			req := httptest.NewRequest(c.method, c.path, c.body)
			for k, vs := range c.header {
				req.Header[k] = vs
			}
			rec := httptest.NewRecorder()
			g.Handler().ServeHTTP(rec, req)

			if rec.Code != c.status {
				t.Errorf("status %d, want %d (body %s)", rec.Code, c.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if body.Error.Code != c.code || body.Error.Message != c.message {
				t.Errorf("error %q %q, want %q %q", body.Error.Code, body.Error.Message, c.code, c.message)
			}
			for k, v := range c.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if n := apiErrorCount(t, m, c.code); n != 1 {
				t.Errorf("yzpay_api_errors_total{code=%q} = %v, want 1", c.code, n)
			}
		})
	}
}
