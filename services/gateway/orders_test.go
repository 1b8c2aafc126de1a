package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan"
)

func TestCreateQRRefusesBadRequestsWithoutCallingYouzan(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", 101)
	cases := []struct {
		name, body, code string
		status           int
	}{
		{"fractional price", `{"name":"tea","price":1.5,"order_id":"o-1"}`, "invalid_price", 400},
		{"price as string", `{"name":"tea","price":"100","order_id":"o-1"}`, "invalid_price", 400},
		{"negative price", `{"name":"tea","price":-100,"order_id":"o-1"}`, "invalid_price", 400},
		{"zero price", `{"name":"tea","price":0,"order_id":"o-1"}`, "invalid_price", 400},
		{"price above 100000 yuan", `{"name":"tea","price":10000001,"order_id":"o-1"}`, "invalid_price", 400},
		{"price in exponent form", `{"name":"tea","price":1e3,"order_id":"o-1"}`, "invalid_price", 400},
		{"price missing", `{"name":"tea","order_id":"o-1"}`, "invalid_price", 400},
		{"order_id missing", `{"name":"tea","price":100}`, "invalid_order_id", 400},
		{"order_id empty", `{"name":"tea","price":100,"order_id":""}`, "invalid_order_id", 400},
		{"order_id with a space", `{"name":"tea","price":100,"order_id":"o 1"}`, "invalid_order_id", 400},
		{"order_id with a slash", `{"name":"tea","price":100,"order_id":"o/1"}`, "invalid_order_id", 400},
		{"order_id too long", `{"name":"tea","price":100,"order_id":"` + strings.Repeat("o", 65) + `"}`, "invalid_order_id", 400},
		{"name missing", `{"price":100,"order_id":"o-1"}`, "invalid_name", 400},
		{"name blank", `{"name":"   ","price":100,"order_id":"o-1"}`, "invalid_name", 400},
		{"name too long", `{"name":"` + long + `","price":100,"order_id":"o-1"}`, "invalid_name", 400},
		{"not JSON", `name=tea&price=100`, "malformed_json", 400},
		{"two objects", `{"name":"tea","price":100,"order_id":"o-1"}{}`, "malformed_json", 400},
		{"body over 64 KiB", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, "body_too_large", 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.createQR(c.body)
			if r.Status != c.status || r.errorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", r.Status, r.errorCode(), c.status, c.code, r.Body)
			}
		})
	}
	if calls := e.youzan.Calls(); len(calls) != 0 {
		t.Errorf("refused requests created %d Youzan QR codes", len(calls))
	}
	if e.orderExists("o-1") {
		t.Error("a refused request left an order behind")
	}
}

func TestCreateQRReturnsAPayableQRAndStoresTheOrder(t *testing.T) {
	e := newEnv(t)
	r := e.createQR(`{"name":"  Green tea  ","price":10000000,"order_id":"A_1.b:c-2"}`)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	q := decode[qrAnswer](t, r)
	if q.QRID != 1001 || q.QRURL != "https://pay.example/qr/1001?a=1&b=2" || q.OrderID != "A_1.b:c-2" ||
		q.Price != 10000000 || q.Status != domain.StatusWaitBuyerPay {
		t.Errorf("answer %+v", q)
	}
	if !strings.HasPrefix(q.QRCode, "data:image/png;base64,") {
		t.Errorf("qr_code is not a PNG data URI: %.40q", q.QRCode)
	}
	if calls := e.youzan.Calls(); len(calls) != 1 || calls[0] != (qrCall{"Green tea", 10000000}) {
		t.Errorf("Youzan asked for %+v, want one QR named %q for 10000000 fen", calls, "Green tea")
	}

	// The merchant reads the order back by its own id.
	r = e.do(http.MethodGet, "/api/payment/orders/A_1.b:c-2", nil, bearer(apiKey))
	if r.Status != http.StatusOK {
		t.Fatalf("get order: %d: %s", r.Status, r.Body)
	}
	o := decode[struct {
		OrderID string `json:"order_id"`
		Name    string `json:"name"`
		Status  string `json:"status"`
		QRURL   string `json:"qr_url"`
		Price   int64  `json:"price"`
		QRID    int64  `json:"qr_id"`
	}](t, r)
	if o.OrderID != "A_1.b:c-2" || o.Name != "Green tea" || o.Price != 10000000 || o.QRID != 1001 ||
		o.QRURL != q.QRURL || o.Status != domain.StatusWaitBuyerPay {
		t.Errorf("order read back as %+v", o)
	}
}

func TestGetOrderAnswersNotFoundAndRefusesBadIDs(t *testing.T) {
	e := newEnv(t)
	if r := e.do(http.MethodGet, "/api/payment/orders/nobody", nil, bearer(apiKey)); r.Status != 404 || r.errorCode() != "order_not_found" {
		t.Errorf("unknown order: %d %s", r.Status, r.errorCode())
	}
	if r := e.do(http.MethodGet, "/api/payment/orders/"+strings.Repeat("o", 65), nil, bearer(apiKey)); r.Status != 400 || r.errorCode() != "invalid_order_id" {
		t.Errorf("overlong order id: %d %s", r.Status, r.errorCode())
	}
}

func TestCreateQRRepeatedReturnsTheSameQRWithoutASecondYouzanCall(t *testing.T) {
	e := newEnv(t)
	const body = `{"name":"tea","price":100,"order_id":"o-1"}`
	first := decode[qrAnswer](t, e.createQR(body))
	for range 3 {
		r := e.createQR(body)
		if r.Status != http.StatusOK {
			t.Fatalf("repeat: %d: %s", r.Status, r.Body)
		}
		if again := decode[qrAnswer](t, r); again.QRID != first.QRID || again.QRURL != first.QRURL {
			t.Fatalf("repeat answered QR %d %s, first was %d %s", again.QRID, again.QRURL, first.QRID, first.QRURL)
		}
	}
	if n := len(e.youzan.Calls()); n != 1 {
		t.Errorf("Youzan created %d QR codes for one order, want 1", n)
	}
}

func TestConcurrentCreatesOfOneOrderMakeOneQR(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	e.youzan.block = release
	const n = 8
	answers := make([]qrAnswer, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := e.createQR(`{"name":"tea","price":100,"order_id":"o-1"}`)
			statuses[i] = r.Status
			if r.Status == http.StatusOK {
				answers[i] = decode[qrAnswer](t, r)
			}
		})
	}
	// Hold the first Youzan call until it is made: the other requests find
	// the claim taken and wait for its QR.
	eventually(t, "the first Youzan call", func() bool { return len(e.youzan.Calls()) >= 1 })
	close(release)
	wg.Wait()
	for i := range n {
		if statuses[i] != http.StatusOK || answers[i].QRID != answers[0].QRID {
			t.Errorf("request %d: status %d, QR %d; request 0 got QR %d", i, statuses[i], answers[i].QRID, answers[0].QRID)
		}
	}
	if calls := len(e.youzan.Calls()); calls != 1 {
		t.Errorf("%d Youzan calls for one order, want 1", calls)
	}
}

func TestCreateQRWithADifferentPriceOrNameConflicts(t *testing.T) {
	e := newEnv(t)
	first := decode[qrAnswer](t, e.createQR(`{"name":"tea","price":100,"order_id":"o-1"}`))
	for _, body := range []string{
		`{"name":"tea","price":101,"order_id":"o-1"}`,
		`{"name":"coffee","price":100,"order_id":"o-1"}`,
	} {
		r := e.createQR(body)
		if r.Status != http.StatusConflict || r.errorCode() != "order_conflict" {
			t.Errorf("%s: %d %s, want 409 order_conflict", body, r.Status, r.errorCode())
		}
	}
	if n := len(e.youzan.Calls()); n != 1 {
		t.Errorf("%d Youzan calls, want 1: a conflicting request must not create a QR", n)
	}
	o, err := e.store.OrderByID(context.Background(), "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if o.Price != 100 || o.Name != "tea" || o.QRID != first.QRID {
		t.Errorf("conflicting requests changed the order: %+v", o)
	}
}

func TestYouzanFailureAnswers5xxAndARetrySucceedsAtOnce(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"retryable", &youzan.Error{API: youzan.APIQRCodeCreate, Kind: youzan.RateLimited, Code: 4101}, http.StatusBadGateway, "youzan_unavailable"},
		{"refused", &youzan.Error{API: youzan.APIQRCodeCreate, Kind: youzan.Business, Message: "shop closed"}, http.StatusBadGateway, "youzan_error"},
		{"unclassified", errors.New("connection reset"), http.StatusServiceUnavailable, "unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.youzan.setErr(c.err)
			const body = `{"name":"tea","price":100,"order_id":"o-1"}`
			r := e.createQR(body)
			if r.Status != c.status || r.errorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", r.Status, r.errorCode(), c.status, c.code, r.Body)
			}
			// The claim is released: with ClaimFor an hour, a retry that
			// found it held would wait for the 15 s request deadline.
			e.youzan.setErr(nil)
			e.retryCreates(body)
		})
	}
}

func TestPaymentRoutesRequireTheBearerKey(t *testing.T) {
	e := newEnv(t)
	const body = `{"name":"tea","price":100,"order_id":"o-1"}`
	for name, h := range map[string]http.Header{
		"no header":          {},
		"wrong key":          bearer("not-the-key"),
		"admin key":          bearer(adminKey),
		"basic scheme":       {"Authorization": {"Basic " + apiKey}},
		"key without scheme": {"Authorization": {apiKey}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, r := range []response{
				e.do(http.MethodPost, "/api/payment/qrcode", []byte(body), h),
				e.do(http.MethodGet, "/api/payment/orders/o-1", nil, h),
			} {
				if r.Status != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
					t.Errorf("got %d %s, want 401 unauthorized", r.Status, r.errorCode())
				}
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	if n := len(e.youzan.Calls()); n != 0 || e.orderExists("o-1") {
		t.Errorf("unauthenticated requests reached Youzan %d times or stored the order", n)
	}
	if r := e.createQR(body); r.Status != http.StatusOK {
		t.Errorf("the right key: %d: %s", r.Status, r.Body)
	}
}

// attachFailsOnce is the real store, except that its first
// AttachQRAndCheckout fails as a store that went away would.
type attachFailsOnce struct {
	store.Store
	failed atomic.Bool
}

func (s *attachFailsOnce) AttachQRAndCheckout(ctx context.Context, qr domain.QRCode, c domain.Checkout) (domain.Order, domain.Checkout, error) {
	if s.failed.CompareAndSwap(false, true) {
		return domain.Order{}, domain.Checkout{}, errors.New("store went away")
	}
	return s.Store.AttachQRAndCheckout(ctx, qr, c)
}

// A QR Youzan made that the store could not record gives the claim back:
// the merchant's retry creates the order at once instead of waiting for the
// claim to lapse (an hour here).
func TestAttachFailureReleasesTheClaim(t *testing.T) {
	e := newEnv(t, func(_ *config.Gateway, d *gateway.Deps) { d.Store = &attachFailsOnce{Store: d.Store} })
	const body = `{"name":"tea","price":100,"order_id":"o-1"}`
	if r := e.createQR(body); r.Status != http.StatusServiceUnavailable || r.errorCode() != "unavailable" {
		t.Fatalf("create while the store fails = %d %s, want 503 unavailable: %s", r.Status, r.errorCode(), r.Body)
	}
	e.retryCreates(body)
}

// retryCreates repeats a create that failed once it had the claim, and
// checks that it is answered with a QR at once: a claim left held would
// make it wait out the request deadline. Youzan was called twice in all,
// for the failed attempt and for the retry.
func (e *env) retryCreates(body string) {
	e.t.Helper()
	r := e.createQR(body)
	if r.Status != http.StatusOK {
		e.t.Fatalf("retry after the failure: %d: %s", r.Status, r.Body)
	}
	if q := decode[qrAnswer](e.t, r); q.QRID == 0 {
		e.t.Errorf("retry answered no QR: %s", r.Body)
	}
	if n := len(e.youzan.Calls()); n != 2 {
		e.t.Errorf("%d Youzan calls, want 2 (the failed attempt and the retry)", n)
	}
}
