package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/store/sqlite"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// `yzpay serve` killed with SIGKILL while payments are in flight comes back
// from its own files (embedded JetStream, SQLite) and delivers every
// pending notification. The binary is built and run as a user would.
func TestServeSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the yzpay binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "yzpay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	sb, err := sandbox.New(sandbox.Config{RetryScale: 0.002})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	sbSrv := httptest.NewServer(sb)
	t.Cleanup(sbSrv.Close)

	// The merchant is down at first, so deliveries are pending at the kill.
	var up atomic.Bool
	var mu sync.Mutex
	got := map[string]bool{}
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		p, err := merchant.FromRequest(r)
		if err != nil || !p.Verify("kill9-secret") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if p.Status == "TRADE_SUCCESS" {
			mu.Lock()
			got[p.OrderID] = true
			mu.Unlock()
		}
	}))
	t.Cleanup(merchant.Close)

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := sb.Config()
	sb.SetPushURL("http://" + addr + "/api/status")
	env := append(os.Environ(),
		"DATA_DIR="+filepath.Join(dir, "data"), "GATEWAY_ADDR="+addr, "OPS_ADDR=same", "GATEWAY_API_KEY=k",
		"YOUZAN_API_BASE="+sbSrv.URL, "YOUZANYUN_CLIENT_ID="+c.ClientID, "YOUZANYUN_CLIENT_SECRET="+c.ClientSecret,
		"YOUZAN_KDT_ID="+c.KdtID, "SELF_SECRET=kill9-secret", "PUSH_API="+merchant.URL,
		"PUSH_RETRY_SCHEDULE=200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms",
		"LOG_LEVEL=warn", "DATABASE_URL=", "NATS_URL=")
	startServe := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve")
		cmd.Env, cmd.Dir = env, dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("yzpay serve not ready:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cmd := startServe()

	const n = 40
	ctx := context.Background()
	for i := 0; i < n; i++ {
		body, _ := json.Marshal(map[string]any{"name": "k9", "price": 100 + i, "order_id": fmt.Sprintf("k9-%d", i)})
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/payment/qrcode", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var q struct {
			QRID int64 `json:"qr_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&q)
		resp.Body.Close()
		if _, err := sb.Pay(ctx, q.QRID, sandbox.PayOptions{BuyerID: "b"}); err != nil {
			t.Fatal(err)
		}
	}

	// Kill once the notifier has recorded failed attempts: work is in flight.
	st := openStoreWhenReady(t, filepath.Join(dir, "data", "yzpay.db"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := st.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryPending, Limit: 1000})
		if err == nil && len(ds) >= n/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pending deliveries before the kill (%d, %v)", len(ds), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st.Close()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	up.Store(true)
	cmd = startServe()
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	deadline = time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the merchant heard TRADE_SUCCESS for %d of %d orders", k, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openStoreWhenReady opens the running server's SQLite file for reading.
func openStoreWhenReady(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
