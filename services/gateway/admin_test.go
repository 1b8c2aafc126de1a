package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store"
)

// fakeReplayer is the gateway's Replayer port.
type fakeReplayer struct {
	mu    sync.Mutex
	calls [][2]string
	out   []domain.Delivery
	err   error
}

func (f *fakeReplayer) Replay(_ context.Context, eventID, endpoint string) ([]domain.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [2]string{eventID, endpoint})
	return f.out, f.err
}

func withAdmin(r gateway.Replayer) option {
	return func(c *config.Gateway, d *gateway.Deps) {
		c.AdminKey = adminKey
		d.Replayer = r
	}
}

type deliveriesAnswer struct {
	Deliveries []struct {
		EventID  string `json:"event_id"`
		Endpoint string `json:"endpoint"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
	} `json:"deliveries"`
}

func TestAdminListsDeliveriesWithoutLeakingEndpointSecrets(t *testing.T) {
	e := newEnv(t, withAdmin(nil))
	const endpoint = "https://shop:pw@merchant.example/notify?token=s3cret"
	now := time.Now()
	_, err := e.store.RecordAttempts(context.Background(), []domain.Attempt{
		{EventID: "T1:TRADE_PAID", Endpoint: endpoint, OrderID: "o-1", Status: "TRADE_PAID", Delivered: true, HTTPStatus: 200, At: now},
		{EventID: "T2:TRADE_PAID", Endpoint: endpoint, OrderID: "o-2", Status: "TRADE_PAID", GiveUp: true, HTTPStatus: 500, Error: "HTTP 500", At: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.do(http.MethodGet, "/api/admin/deliveries?state=failed", nil, bearer(adminKey))
	if r.Status != http.StatusOK {
		t.Fatalf("%d: %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "s3cret") || strings.Contains(string(r.Body), "pw@") {
		t.Errorf("listing shows the endpoint's credentials: %s", r.Body)
	}
	got := decode[deliveriesAnswer](t, r).Deliveries
	if len(got) != 1 || got[0].EventID != "T2:TRADE_PAID" || got[0].State != domain.DeliveryFailed ||
		got[0].Endpoint != "https://merchant.example/notify" {
		t.Errorf("failed deliveries: %+v", got)
	}
	for _, q := range []string{"state=lost", "limit=0", "limit=1001", "limit=x"} {
		if r := e.do(http.MethodGet, "/api/admin/deliveries?"+q, nil, bearer(adminKey)); r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
}

func TestAdminNeedsItsOwnKeyAndIsOffWithoutOne(t *testing.T) {
	e := newEnv(t, withAdmin(nil))
	for _, key := range []string{"", apiKey, "wrong"} {
		if r := e.do(http.MethodGet, "/api/admin/deliveries", nil, bearer(key)); r.Status != http.StatusUnauthorized {
			t.Errorf("key %q: %d, want 401", key, r.Status)
		}
	}
	off := newEnv(t)
	if r := off.do(http.MethodGet, "/api/admin/deliveries", nil, bearer(adminKey)); r.Status != http.StatusNotFound {
		t.Errorf("without ADMIN_API_KEY: %d, want 404", r.Status)
	}
}

func TestAdminReplay(t *testing.T) {
	t.Run("replayed", func(t *testing.T) {
		rp := &fakeReplayer{out: []domain.Delivery{{EventID: "T1:TRADE_PAID", Endpoint: "https://m.example/n?k=v", Attempts: 11}}}
		e := newEnv(t, withAdmin(rp))
		r := e.do(http.MethodPost, "/api/admin/deliveries/T1:TRADE_PAID/replay?endpoint=https://m.example/n", nil, bearer(adminKey))
		if r.Status != http.StatusAccepted || !strings.Contains(string(r.Body), `"event_id":"T1:TRADE_PAID"`) {
			t.Errorf("%d %s", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "k=v") {
			t.Errorf("answer shows the endpoint's query: %s", r.Body)
		}
		if len(rp.calls) != 1 || rp.calls[0] != [2]string{"T1:TRADE_PAID", "https://m.example/n"} {
			t.Errorf("replayer called with %v", rp.calls)
		}
	})
	t.Run("nothing to replay", func(t *testing.T) {
		e := newEnv(t, withAdmin(&fakeReplayer{err: replay.ErrNothingToReplay}))
		r := e.do(http.MethodPost, "/api/admin/deliveries/nope/replay", nil, bearer(adminKey))
		if r.Status != http.StatusNotFound || r.errorCode() != "delivery_not_found" {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("superseded", func(t *testing.T) {
		e := newEnv(t, withAdmin(&fakeReplayer{err: replay.ErrSuperseded}))
		r := e.do(http.MethodPost, "/api/admin/deliveries/T1:WAIT_SELLER_SEND_GOODS/replay", nil, bearer(adminKey))
		if r.Status != http.StatusConflict || r.errorCode() != "delivery_superseded" {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("not wired", func(t *testing.T) {
		e := newEnv(t, withAdmin(nil))
		r := e.do(http.MethodPost, "/api/admin/deliveries/T1:TRADE_PAID/replay", nil, bearer(adminKey))
		if r.Status != http.StatusNotImplemented {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
}

type receiptsAnswer struct {
	Receipts []struct {
		TID       string `json:"tid"`
		Type      string `json:"type"`
		State     string `json:"state"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
		DeadAt    string `json:"dead_at"`
		NextTryAt string `json:"next_try_at"`
	} `json:"receipts"`
}

// Dead receipts (trade never found) are listed, and a replay makes one due
// again; unknown tids and bad queries get their error codes.
func TestAdminListsAndReplaysDeadReceipts(t *testing.T) {
	e := newEnv(t, withAdmin(nil))
	ctx := context.Background()
	now := time.Now().UTC()
	err := e.store.ParkReceipts(ctx, []domain.ParkedReceipt{
		{TID: "E20260101000000000000001", Type: "trade_TradePaid", Body: []byte(`{}`), LastError: "trade not found",
			LastTryAt: now.Add(-time.Hour), NextTryAt: now.Add(time.Hour)},
		{TID: "E20260101000000000000002", Type: "trade_TradePaid", Body: []byte(`{}`), LastTryAt: now, NextTryAt: now.Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RecordReceiptTry(ctx, "E20260101000000000000001", domain.ReceiptTry{At: now, Error: "trade not found", Dead: true}); err != nil {
		t.Fatal(err)
	}

	r := e.do(http.MethodGet, "/api/admin/receipts?state=dead", nil, bearer(adminKey))
	if r.Status != http.StatusOK {
		t.Fatalf("%d: %s", r.Status, r.Body)
	}
	got := decode[receiptsAnswer](t, r).Receipts
	if len(got) != 1 || got[0].TID != "E20260101000000000000001" || got[0].State != domain.ReceiptDead ||
		got[0].Attempts != 2 || got[0].DeadAt == "" || got[0].LastError != "trade not found" {
		t.Fatalf("dead receipts: %+v", got)
	}
	if all := decode[receiptsAnswer](t, e.do(http.MethodGet, "/api/admin/receipts", nil, bearer(adminKey))).Receipts; len(all) != 2 {
		t.Errorf("all receipts: %+v", all)
	}

	r = e.do(http.MethodPost, "/api/admin/receipts/E20260101000000000000001/replay", nil, bearer(adminKey))
	if r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	rs, err := e.store.ListReceipts(ctx, store.ReceiptFilter{State: domain.ReceiptParked})
	if err != nil || len(rs) != 2 || rs[0].TID != "E20260101000000000000001" || rs[0].NextTryAt.After(time.Now()) {
		t.Fatalf("after replay the receipt must be parked and due now: %+v, %v", rs, err)
	}

	if r := e.do(http.MethodPost, "/api/admin/receipts/E29999999999999999999999/replay", nil, bearer(adminKey)); r.Status != http.StatusNotFound ||
		!strings.Contains(string(r.Body), `"receipt_not_found"`) {
		t.Errorf("replay of an unknown tid: %d %s", r.Status, r.Body)
	}
	for _, q := range []string{"state=failed", "limit=0", "limit=x"} {
		if r := e.do(http.MethodGet, "/api/admin/receipts?"+q, nil, bearer(adminKey)); r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	if r := e.do(http.MethodGet, "/api/admin/receipts", nil, bearer(apiKey)); r.Status != http.StatusUnauthorized {
		t.Errorf("receipts with the merchant key: %d", r.Status)
	}
}
