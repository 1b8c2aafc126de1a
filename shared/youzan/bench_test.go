package youzan_test

import (
	"context"
	"net/http/httptest"
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
