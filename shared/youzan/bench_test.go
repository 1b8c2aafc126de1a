package youzan_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/yzpay/yzpay/shared/youzan"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// BenchmarkGetTrade is one youzan.trade.get round trip against the sandbox
// over loopback HTTP, client parsing included: the per-receipt cost the
// tradefetcher pays.
func BenchmarkGetTrade(b *testing.B) {
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	srv := httptest.NewServer(sb)
	defer srv.Close()
	c := sb.Config()
	cl, err := youzan.New(youzan.Config{BaseURL: srv.URL, ClientID: c.ClientID, ClientSecret: c.ClientSecret, KdtID: c.KdtID})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	qr, err := cl.CreateQRCode(ctx, "bench", 100)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := sb.Pay(ctx, qr.ID, sandbox.PayOptions{NoPush: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.GetTrade(ctx, tr.TID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReadTradeGet is the client's share of one trade.get without the
// HTTP exchange: classifying the sandbox's 4.0.0 answer and reading the
// trade in it, the per-receipt decoding the tradefetcher pays.
func BenchmarkReadTradeGet(b *testing.B) {
	body := sandboxTradeGetAnswer(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		t, err := youzan.ReadTradeGet(http.StatusOK, body)
		if err != nil || t.QRID == 0 || t.Payment != 100 {
			b.Fatalf("%+v, %v", t, err)
		}
	}
}

// sandboxTradeGetAnswer is the body the sandbox answers trade.get with for
// a paid QR trade, as the bench's rig serves it.
func sandboxTradeGetAnswer(b *testing.B) []byte {
	b.Helper()
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	ctx := context.Background()
	qrID := sb.CreateQR("bench", 100)
	tr, err := sb.Pay(ctx, qrID, sandbox.PayOptions{NoPush: true})
	if err != nil {
		b.Fatal(err)
	}
	cfg := sb.Config()
	call := func(path, body string) []byte {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sb.ServeHTTP(rec, req)
		return rec.Body.Bytes()
	}
	var tok struct {
		Data struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	ans := call("/auth/token", fmt.Sprintf(`{"client_id":%q,"client_secret":%q,"authorize_type":"silent","grant_id":%q}`,
		cfg.ClientID, cfg.ClientSecret, cfg.KdtID))
	if err := json.Unmarshal(ans, &tok); err != nil || tok.Data.AccessToken == "" {
		b.Fatalf("token: %s", ans)
	}
	return call("/api/youzan.trade.get/4.0.0?access_token="+tok.Data.AccessToken, `{"tid":"`+tr.TID+`"}`)
}
