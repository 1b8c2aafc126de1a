package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// A paused endpoint shows in the admin API with its state, last error and
// pending count, and an operator resumes it by hand; an unknown one is 404.
func TestAdminListsAndResumesEndpoints(t *testing.T) {
	e := newEnv(t, withAdmin(nil))
	ctx := context.Background()
	url := "https://merchant.example/notify?token=s3cret"
	p := store.HealthPolicy{PauseAfter: time.Minute, ProbeInterval: time.Minute}
	t0 := time.Now().Add(-2 * time.Minute)
	for _, at := range []time.Time{t0, t0.Add(90 * time.Second)} {
		if _, _, err := e.store.NoteEndpoint(ctx, domain.EndpointOutcome{Endpoint: url, Error: "merchant answered HTTP 503", At: at}, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.RecordAttempts(ctx, []domain.Attempt{{EventID: "E1:TRADE_SUCCESS", Endpoint: url, OrderID: "o-1",
		Status: "TRADE_SUCCESS", Held: true, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	r := e.do(http.MethodGet, "/api/admin/endpoints", nil, bearer(adminKey))
	type answer struct {
		Endpoints []struct {
			Endpoint  string `json:"endpoint"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
			Pending   int    `json:"pending"`
		} `json:"endpoints"`
	}
	got := decode[answer](t, r).Endpoints
	if r.Status != http.StatusOK || len(got) != 1 || got[0].State != domain.EndpointPaused || got[0].Pending != 1 ||
		got[0].LastError != "merchant answered HTTP 503" || strings.Contains(got[0].Endpoint, "s3cret") {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	r = e.do(http.MethodPost, "/api/admin/endpoints/resume?url="+got[0].Endpoint, nil, bearer(adminKey))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"resumed":true`) {
		t.Fatalf("resume: %d %s", r.Status, r.Body)
	}
	if hs, err := e.store.ListEndpointHealth(ctx); err != nil || hs[0].State != domain.EndpointActive {
		t.Fatalf("after resume: %+v %v", hs, err)
	}
	r = e.do(http.MethodPost, "/api/admin/endpoints/resume?url=https://nobody.example/", nil, bearer(adminKey))
	if r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), `"endpoint_not_found"`) {
		t.Fatalf("unknown endpoint: %d %s", r.Status, r.Body)
	}
}
