package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
)

func withNotifyHosts(sandbox bool, hosts ...string) option {
	return func(c *config.Gateway, _ *gateway.Deps) {
		c.NotifyURLHosts, c.Sandbox = hosts, sandbox
	}
}

// TestCreateNotifyURL: a notify_url to a listed https host is stored with
// the order (where the notifier finds it); repeating the create with the
// same one is idempotent, with another (or none) a 409 like another price.
func TestCreateNotifyURL(t *testing.T) {
	e := newEnv(t, withNotifyHosts(false, "m.example"))
	const u = "https://m.example/notify?shop=1"
	body := `{"name":"Tea","price":300,"order_id":"nu-1","notify_url":"` + u + `"}`
	r := e.createQR(body)
	if r.Status != http.StatusOK {
		t.Fatalf("create with notify_url = %d %s", r.Status, r.Body)
	}
	st, err := e.store.OrderState(context.Background(), []string{"nu-1"})
	if err != nil || st.NotifyURLs["nu-1"] != u {
		t.Fatalf("stored notify_url = %v, %v; want %q", st.NotifyURLs, err, u)
	}
	a := decode[checkoutAnswer](t, r)
	if b := decode[checkoutAnswer](t, e.createQR(body)); b.CheckoutURL != a.CheckoutURL {
		t.Errorf("repeat gave page %s, want %s", b.CheckoutURL, a.CheckoutURL)
	}
	for _, body := range []string{
		`{"name":"Tea","price":300,"order_id":"nu-1","notify_url":"https://m.example/other"}`,
		`{"name":"Tea","price":300,"order_id":"nu-1"}`,
	} {
		if r := e.createQR(body); r.Status != http.StatusConflict || r.errorCode() != "order_conflict" {
			t.Errorf("%s = %d %s, want 409 order_conflict", body, r.Status, r.Body)
		}
	}
	// An order created without one cannot gain one later either.
	if r := e.createQR(`{"name":"Tea","price":300,"order_id":"nu-2"}`); r.Status != http.StatusOK {
		t.Fatalf("create = %d %s", r.Status, r.Body)
	}
	if r := e.createQR(`{"name":"Tea","price":300,"order_id":"nu-2","notify_url":"` + u + `"}`); r.Status != http.StatusConflict {
		t.Errorf("adding a notify_url to an existing order = %d %s, want 409", r.Status, r.Body)
	}
	// Forms take it too.
	if r := e.do(http.MethodPost, "/api/payment/qrcode", []byte("name=x&price=5&order_id=nu-f&notify_url=https%3A%2F%2Fm.example%2Fn"), formHeader()); r.Status != http.StatusOK {
		t.Fatalf("form create with notify_url = %d %s", r.Status, r.Body)
	}
	if st, _ := e.store.OrderState(context.Background(), []string{"nu-f"}); st.NotifyURLs["nu-f"] != "https://m.example/n" {
		t.Errorf("form notify_url stored as %q", st.NotifyURLs["nu-f"])
	}
	for _, u := range []string{"http://m.example/n", "https://evil.example/n", "https://user:pw@m.example/n", "https://m.example/#f", "http://127.0.0.1/n", "ftp://m.example/n", "/relative"} {
		body, _ := json.Marshal(map[string]any{"name": "x", "price": 1, "order_id": "nu-bad", "notify_url": u})
		if r := e.createQR(string(body)); r.Status != http.StatusBadRequest || r.errorCode() != "url_not_allowed" {
			t.Errorf("notify_url %q = %d %s, want 400 url_not_allowed", u, r.Status, r.Body)
		}
	}
	if e.orderExists("nu-bad") {
		t.Error("a refused notify_url still created the order")
	}
}

// TestNotifyURLRefusedWithoutHosts: with NOTIFY_URL_HOSTS empty every
// notify_url is refused, so no order notifies anywhere the operator did not
// allow; in sandbox mode loopback http is accepted when listed.
func TestNotifyURLRefusedWithoutHosts(t *testing.T) {
	e := newEnv(t)
	if r := e.createQR(`{"name":"x","price":1,"order_id":"nh-1","notify_url":"https://m.example/n"}`); r.Status != http.StatusBadRequest || r.errorCode() != "url_not_allowed" {
		t.Errorf("notify_url with NOTIFY_URL_HOSTS empty = %d %s, want 400 url_not_allowed", r.Status, r.Body)
	}
	s := newEnv(t, withNotifyHosts(true, "127.0.0.1"))
	if r := s.createQR(`{"name":"x","price":1,"order_id":"nh-2","notify_url":"http://127.0.0.1:9/n"}`); r.Status != http.StatusOK {
		t.Errorf("sandbox loopback notify_url = %d %s, want 200", r.Status, r.Body)
	}
}
