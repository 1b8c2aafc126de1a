package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/yzpay/yzpay/cmd/yzpay/app"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// startEmbedded runs `yzpay serve --sandbox` defaults: embedded JetStream,
// SQLite, and the demo merchant — nothing external.
func startEmbedded(t *testing.T, env map[string]string) *app.App {
	t.Helper()
	base := map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir()}
	for k, v := range env {
		base[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, app.Options{
		Env: config.FromMap(base), Sandbox: true,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		SandboxConfig: sandbox.Config{RetryScale: 0.001},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := a.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a
}

// The sandbox demo closes the loop with nothing installed: the demo
// merchant receives a correctly signed TRADE_SUCCESS.
func TestServeSandboxDemo(t *testing.T) {
	a := startEmbedded(t, nil)
	for _, want := range []string{"/api/payment/qrcode", "/metrics", "sqlite", "embedded JetStream", "/wxpay/confirmQr?qr_id=<qr_id>"} {
		if !strings.Contains(a.Banner, want) {
			t.Errorf("start-up banner lacks %q:\n%s", want, a.Banner)
		}
	}
	resp, err := http.Post(a.URL+"/api/payment/qrcode", "application/json", strings.NewReader(`{"name":"demo","price":1,"order_id":"demo-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("create QR without a key in sandbox mode: %d %s", resp.StatusCode, body)
	}
	o, err := a.Store.OrderByID(context.Background(), "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	// Pay the way a person would: the button on the pay page posts here.
	pr, err := http.Post(a.URL+"/sandbox/qrcodes/"+itoa(o.QRID)+"/pay", "application/json", nil)
	if err != nil || pr.StatusCode != 200 {
		t.Fatalf("pay: %v %v", err, pr)
	}
	pr.Body.Close()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case p := <-a.MerchantCh:
			if !p.Valid {
				t.Fatalf("demo merchant got a push with a bad sign: %+v", p)
			}
			if p.Push.Status == "TRADE_SUCCESS" && p.Push.OrderID == "demo-1" {
				if p.Push.Payment != 1 {
					t.Errorf("payment %d, want 1", p.Push.Payment)
				}
				return
			}
		case <-deadline:
			t.Fatal("demo merchant never received TRADE_SUCCESS")
		}
	}
}

// Every series passes the Prometheus linter (the checks of
// `promtool check metrics`), and promtool itself when it is installed.
func TestMetricsLint(t *testing.T) {
	a := startEmbedded(t, nil)
	// Exercise the routes so labelled series exist.
	for _, p := range []string{"/healthz", "/readyz", "/api/payment/orders/nope"} {
		if r, err := http.Get(a.URL + p); err == nil {
			r.Body.Close()
		}
	}
	r, err := http.Post(a.URL+"/api/status", "application/json", strings.NewReader(`{"test":true}`))
	if err == nil {
		r.Body.Close()
	}
	// The JetStream series appear once the lag poller has seen the
	// consumers; they are linted too.
	var text []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(a.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		text, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(text, []byte("yzpay_consumer_oldest_unacked_age_seconds{")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack the consumer lag series after 30s:\n%s", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !bytes.Contains(text, []byte("yzpay_http_requests_total")) {
		t.Fatalf("metrics lack yzpay_http_requests_total:\n%s", text)
	}
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = bytes.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed; promlint ran instead")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
