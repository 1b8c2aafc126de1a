package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
)

type attemptsAnswer struct {
	EventID  string `json:"event_id"`
	Attempts []struct {
		Endpoint   string `json:"endpoint"`
		Attempt    int    `json:"attempt"`
		At         string `json:"at"`
		DurationMS int64  `json:"duration_ms"`
		HTTPStatus int    `json:"http_status"`
		ErrorClass string `json:"error_class"`
		Excerpt    string `json:"excerpt"`
		Outcome    string `json:"outcome"`
	} `json:"attempts"`
}

type timelineAnswer struct {
	OrderID  string `json:"order_id"`
	Timeline []struct {
		At         string `json:"at"`
		Kind       string `json:"kind"`
		Status     string `json:"status"`
		EventID    string `json:"event_id"`
		Endpoint   string `json:"endpoint"`
		Attempt    int    `json:"attempt"`
		HTTPStatus int    `json:"http_status"`
		DurationMS *int64 `json:"duration_ms"`
	} `json:"timeline"`
}

// TestAdminAttemptsAndTimeline: an operator sees every attempt of an event
// and the whole story of an order in time order, with endpoint credentials
// redacted; unknown events and orders are 404 with their own codes.
func TestAdminAttemptsAndTimeline(t *testing.T) {
	e := newEnv(t, withAdmin(nil))
	const endpoint = "https://shop:pw@merchant.example/notify?token=s3cret"
	if r := e.createQR(`{"name":"Tea","price":300,"order_id":"tl-1"}`); r.Status != http.StatusOK {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	o, err := e.store.OrderByID(context.Background(), "tl-1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := e.store.RecordObservations(context.Background(), []domain.Observation{{QRID: o.QRID, TID: "T9",
		Status: domain.StatusTradePaid, Payment: 300, PaidAt: now, ObservedAt: now}}); err != nil {
		t.Fatal(err)
	}
	ev := domain.EventID("T9", "tl-1", domain.StatusTradePaid)
	if _, err := e.store.RecordAttempts(context.Background(), []domain.Attempt{
		{EventID: ev, Endpoint: endpoint, OrderID: "tl-1", Status: domain.StatusTradePaid, HTTPStatus: 500,
			ErrorClass: domain.AttemptErrorHTTP, Error: "HTTP 500", Excerpt: "busy", Duration: 40 * time.Millisecond,
			NextAttemptAt: now.Add(time.Minute), At: now.Add(time.Second)},
		{EventID: ev, Endpoint: endpoint, OrderID: "tl-1", Status: domain.StatusTradePaid, HTTPStatus: 200,
			Excerpt: "success", Delivered: true, At: now.Add(2 * time.Second)},
	}); err != nil {
		t.Fatal(err)
	}

	r := e.do(http.MethodGet, "/api/admin/events/"+ev+"/attempts", nil, bearer(adminKey))
	if r.Status != http.StatusOK {
		t.Fatalf("attempts: %d %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "s3cret") || strings.Contains(string(r.Body), "pw@") {
		t.Errorf("attempts show the endpoint's credentials: %s", r.Body)
	}
	as := decode[attemptsAnswer](t, r)
	if as.EventID != ev || len(as.Attempts) != 2 {
		t.Fatalf("attempts answer %+v", as)
	}
	if a := as.Attempts[0]; a.Attempt != 1 || a.HTTPStatus != 500 || a.DurationMS != 40 || a.ErrorClass != "http_status" ||
		a.Excerpt != "busy" || a.Outcome != "retry" || a.Endpoint != "https://merchant.example/notify" || a.At == "" {
		t.Errorf("first attempt %+v", a)
	}
	if a := as.Attempts[1]; a.Attempt != 2 || a.HTTPStatus != 200 || a.Outcome != "delivered" || a.Excerpt != "success" {
		t.Errorf("second attempt %+v", a)
	}

	r = e.do(http.MethodGet, "/api/admin/orders/tl-1/timeline", nil, bearer(adminKey))
	if r.Status != http.StatusOK {
		t.Fatalf("timeline: %d %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "s3cret") {
		t.Errorf("timeline shows the endpoint's credentials: %s", r.Body)
	}
	tl := decode[timelineAnswer](t, r)
	var kinds []string
	for i, x := range tl.Timeline {
		kinds = append(kinds, x.Kind)
		if i > 0 && x.At < tl.Timeline[i-1].At {
			t.Errorf("timeline out of order at %d: %s after %s", i, x.At, tl.Timeline[i-1].At)
		}
	}
	if got, want := strings.Join(kinds, ","), "order_created,status_changed,attempt,attempt"; got != want {
		t.Fatalf("timeline kinds %s, want %s: %s", got, want, r.Body)
	}
	if x := tl.Timeline[1]; x.Status != domain.StatusTradePaid || x.EventID != ev {
		t.Errorf("status change entry %+v", x)
	}
	if x := tl.Timeline[3]; x.Attempt != 2 || x.HTTPStatus != 200 || x.DurationMS == nil || x.EventID != ev {
		t.Errorf("attempt entry %+v", x)
	}

	for path, code := range map[string]string{
		"/api/admin/events/T404:TRADE_PAID/attempts": "event_not_found",
		"/api/admin/orders/nope/timeline":            "order_not_found",
	} {
		r := e.do(http.MethodGet, path, nil, bearer(adminKey))
		if r.Status != http.StatusNotFound || r.errorCode() != code {
			t.Errorf("%s: %d %s, want 404 %s", path, r.Status, r.Body, code)
		}
		if r := e.do(http.MethodGet, path, nil, bearer(apiKey)); r.Status != http.StatusUnauthorized {
			t.Errorf("%s with the merchant key: %d, want 401", path, r.Status)
		}
	}
}
