package push

import (
	"context"
	"net/http"
	"testing"

	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// sandboxPaidPush is the trade_TradePaid push the sandbox sends for a paid
// QR trade (full trade in msg, form-encoded; Event-Sign and body sign), the
// push the bench posts.
func sandboxPaidPush(b *testing.B) (body []byte, h http.Header, clientID, secret string) {
	b.Helper()
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	tr, err := sb.Pay(context.Background(), sb.CreateQR("bench", 100), sandbox.PayOptions{NoPush: true})
	if err != nil {
		b.Fatal(err)
	}
	body, h, err = sb.BuildPush(tr.TID, sandbox.MsgTradePaid)
	if err != nil {
		b.Fatal(err)
	}
	c := sb.Config()
	return body, h, c.ClientID, c.ClientSecret
}

// BenchmarkVerifySandboxPaid: Event-Sign, the gateway's usual path.
func BenchmarkVerifySandboxPaid(b *testing.B) {
	body, h, id, secret := sandboxPaidPush(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if p, err := Verify(body, h, id, secret); err != nil || p.QRID == 0 {
			b.Fatal(p, err)
		}
	}
}

// BenchmarkVerifySandboxPaidBodySign: the same push without its header,
// verified by the legacy body sign.
func BenchmarkVerifySandboxPaidBodySign(b *testing.B) {
	body, _, id, secret := sandboxPaidPush(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if p, err := Verify(body, nil, id, secret); err != nil || p.QRID == 0 {
			b.Fatal(p, err)
		}
	}
}
