package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/cmd/yzpay/app"
	"github.com/yzpay/yzpay/shared/config"
	yzmerchant "github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// logBuffer is a log sink safe for the app's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *logBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startLogged(t *testing.T, env map[string]string, sandboxMode bool) (*app.App, *logBuffer, error) {
	t.Helper()
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, app.Options{
		Env: config.FromMap(env), Sandbox: sandboxMode,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
		SandboxConfig: sandbox.Config{RetryScale: 0.001},
	})
	if err != nil {
		cancel()
		return nil, logs, err
	}
	t.Cleanup(func() {
		cancel()
		_ = a.Stop()
	})
	return a, logs, nil
}

type sandboxPush struct {
	header http.Header
	push   yzmerchant.Push
}

// `yzpay serve --sandbox` started next to a production envrc (Postgres and
// NATS that must not be touched — here addresses where nothing answers —,
// the production SELF_SECRET, and PUSH_API at the developer's own local
// merchant): it starts on its own embedded broker and SQLite, says what it
// ignores, and the merchant gets a push marked X-Yzpay-Sandbox: 1 whose
// sign does not verify with SELF_SECRET but does with the secret kept in
// DATA_DIR.
func TestSandboxNextToProductionEnvrc(t *testing.T) {
	got := make(chan sandboxPush, 16)
	m := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := yzmerchant.FromRequest(r)
		if err == nil {
			got <- sandboxPush{r.Header.Clone(), p}
		}
	}))
	t.Cleanup(m.Close)
	dataDir := t.TempDir()
	a, logs, err := startLogged(t, map[string]string{
		"GATEWAY_ADDR": "127.0.0.1:0", "DATA_DIR": dataDir, "STARTUP_TIMEOUT": "2s",
		"DATABASE_URL": "postgres://yzpay:dbpw@127.0.0.1:1/yzpay", "NATS_URL": "nats://yzpay:natspw@127.0.0.1:1",
		"SELF_SECRET": "production-self-secret", "PUSH_API": m.URL + "/notify",
	}, true)
	if err != nil {
		t.Fatalf("sandbox mode tried production backends: %v", err)
	}
	for _, want := range []string{"level=WARN", "sandbox mode ignores DATABASE_URL, NATS_URL, SELF_SECRET"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs.String())
		}
	}
	for _, secret := range []string{"dbpw", "natspw", "production-self-secret"} {
		if strings.Contains(logs.String()+a.Banner, secret) {
			t.Errorf("log or banner shows %q", secret)
		}
	}
	if !strings.Contains(a.Banner, "X-Yzpay-Sandbox") {
		t.Errorf("banner does not say how sandbox pushes are marked:\n%s", a.Banner)
	}

	resp, err := http.Post(a.URL+"/api/payment/qrcode", "application/json", strings.NewReader(`{"name":"iso","price":7,"order_id":"iso-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o, err := a.Store.OrderByID(context.Background(), "iso-1")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := http.Post(a.URL+"/sandbox/qrcodes/"+itoa(o.QRID)+"/pay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()

	secretFile, err := os.ReadFile(filepath.Join(dataDir, config.SandboxSecretFile))
	if err != nil {
		t.Fatalf("sandbox secret file: %v", err)
	}
	sandboxSecret := strings.TrimSpace(string(secretFile))
	deadline := time.After(20 * time.Second)
	for {
		select {
		case r := <-got:
			if r.header.Get("X-Yzpay-Sandbox") != "1" {
				t.Errorf("push for %s %s lacks X-Yzpay-Sandbox: 1 (headers %v)", r.push.OrderID, r.push.Status, r.header)
			}
			if r.push.Verify("production-self-secret") {
				t.Errorf("a sandbox push verifies with the production SELF_SECRET")
			}
			if !r.push.Verify(sandboxSecret) {
				t.Errorf("push does not verify with DATA_DIR/%s", config.SandboxSecretFile)
			}
			if r.push.Status == "TRADE_SUCCESS" {
				return
			}
		case <-deadline:
			t.Fatal("the local merchant never sandboxPush TRADE_SUCCESS")
		}
	}
}

// The explicit, documented way back to the old behaviour:
// SANDBOX_USE_SELF_SECRET=1 signs sandbox pushes with SELF_SECRET (still
// marked X-Yzpay-Sandbox).
func TestSandboxUseSelfSecret(t *testing.T) {
	got := make(chan sandboxPush, 16)
	m := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, err := yzmerchant.FromRequest(r); err == nil {
			got <- sandboxPush{r.Header.Clone(), p}
		}
	}))
	t.Cleanup(m.Close)
	a, _, err := startLogged(t, map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(),
		"SELF_SECRET": "acceptance-secret", "SANDBOX_USE_SELF_SECRET": "1", "PUSH_API": m.URL}, true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(a.URL+"/api/payment/qrcode", "application/json", strings.NewReader(`{"name":"x","price":1,"order_id":"u-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	o, err := a.Store.OrderByID(context.Background(), "u-1")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := http.Post(a.URL+"/sandbox/qrcodes/"+itoa(o.QRID)+"/pay", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	select {
	case r := <-got:
		if !r.push.Verify("acceptance-secret") || r.header.Get("X-Yzpay-Sandbox") != "1" {
			t.Errorf("push: verifies with SELF_SECRET %v, X-Yzpay-Sandbox %q", r.push.Verify("acceptance-secret"), r.header.Get("X-Yzpay-Sandbox"))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no push")
	}
}

// GATEWAY_ADDR beyond loopback in sandbox mode: one WARN line says who can
// pay.
func TestSandboxExposedAddressWarns(t *testing.T) {
	_, logs, err := startLogged(t, map[string]string{"GATEWAY_ADDR": "0.0.0.0:0", "DATA_DIR": t.TempDir()}, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "anyone who can reach it can create orders and pay sandbox QR codes"); n != 1 {
		t.Errorf("want one warning naming who can pay, got %d:\n%s", n, logs.String())
	}
}

// Outside sandbox mode /metrics is on OPS_ADDR only, not on the public port;
// /healthz and /readyz answer on both (probes written for the public port
// keep working, and they say only up or down).
func TestServeOpsListener(t *testing.T) {
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	c := sb.Config()
	a, _, err := startLogged(t, map[string]string{
		"GATEWAY_ADDR": "127.0.0.1:0", "OPS_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "GATEWAY_API_KEY": "k",
		"YOUZAN_API_BASE": srv.URL, "YOUZANYUN_CLIENT_ID": c.ClientID, "YOUZANYUN_CLIENT_SECRET": c.ClientSecret,
		"YOUZAN_KDT_ID": c.KdtID, "SELF_SECRET": "s", "PUSH_API": "http://127.0.0.1:1/x",
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.OpsURL == a.URL {
		t.Fatalf("ops on the public port: %s", a.OpsURL)
	}
	if code := getStatus(t, a.URL+"/metrics"); code != http.StatusNotFound {
		t.Errorf("public port /metrics: %d, want 404", code)
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if p != "/metrics" {
			if code := getStatus(t, a.URL+p); code != http.StatusOK {
				t.Errorf("public port %s: %d, want 200", p, code)
			}
		}
		if code := getStatus(t, a.OpsURL+p); code != http.StatusOK {
			t.Errorf("ops port %s: %d, want 200", p, code)
		}
	}
	if !strings.Contains(a.Banner, a.OpsURL+"/metrics") {
		t.Errorf("banner does not name the ops listener:\n%s", a.Banner)
	}
}

func getStatus(t *testing.T, u string) int {
	t.Helper()
	r, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode
}
