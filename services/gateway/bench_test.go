package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/servicetest"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// BenchmarkReceivePush is POST /api/status for the trade_TradePaid push the
// sandbox sends (full trade in msg, both signatures), one new trade per
// iteration, on a real embedded JetStream: reading, verifying and storing
// the receipt. The HTTP server itself is not included.
func BenchmarkReceivePush(b *testing.B) {
	bk := servicetest.Start(b)
	g, err := gateway.New(config.Gateway{
		Youzan:         config.Youzan{ClientID: clientID, ClientSecret: clientSecret},
		PublishTimeout: 5 * time.Second,
	}, gateway.Deps{Store: bk.Store, JS: bk.JS, Youzan: &fakeYouzan{}, Metrics: metrics.New(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	h := g.Handler()
	sb, err := sandbox.New(sandbox.Config{ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	type req struct {
		body []byte
		h    http.Header
	}
	reqs := make([]req, b.N)
	for i := range reqs {
		tr, err := sb.Pay(context.Background(), sb.CreateQR("bench", 100), sandbox.PayOptions{NoPush: true})
		if err != nil {
			b.Fatal(err)
		}
		body, hdr, err := sb.BuildPush(tr.TID, sandbox.MsgTradePaid)
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = req{body, hdr}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodPost, "/api/status", bytes.NewReader(reqs[i].body))
		r.Header = reqs[i].h
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("push %d: %d %s", i, w.Code, w.Body)
		}
	}
}
