package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yzpay/yzpay/services/notifier"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/metrics"
)

const (
	whsecNew = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	whsecOld = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

func key(t *testing.T, s string) []byte {
	t.Helper()
	k, err := merchant.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verifyStandard checks h as a merchant holding secret would.
func verifyStandard(h hit, secret []byte) error {
	return merchant.VerifyStandard([][]byte{secret}, h.header.Get("webhook-id"), h.header.Get("webhook-timestamp"),
		h.header.Get("webhook-signature"), h.body, time.Now(), merchant.DefaultTolerance)
}

// logBuffer collects a notifier's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSet runs a notifier on an explicit endpoint set (as PUSH_ENDPOINTS_FILE
// gives it) and returns it with its metrics and log.
func (e *env) startSet(cfg config.Notifier) (*notifier.Notifier, *metrics.Metrics, *logBuffer) {
	e.t.Helper()
	cfg.Secret, cfg.RetrySchedule, cfg.Jitter = secret, retrySchedule, -1
	cfg.Timeout, cfg.StoreRetry, cfg.Grace = 5*time.Second, 100*time.Millisecond, time.Second
	m, logs := metrics.New(), &logBuffer{}
	n, err := notifier.New(cfg, notifier.Deps{Store: e.store, JS: e.js, Metrics: m, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("notifier stopped with %v", err)
		}
	})
	return n, m, logs
}

func TestStandardSigningHeadersVerify(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.startSet(config.Notifier{EndpointSet: []config.Endpoint{{URL: m.url, Signing: config.SigningStandard, Secrets: []string{whsecNew}}}})
	ev := event("T1", "o-1", domain.StatusTradeSuccess)
	e.publish(ev)

	eventually(t, "the push", func() bool { return len(m.received()) == 1 && e.settled() })
	h := m.received()[0]
	if got := h.header.Get("webhook-id"); got != ev.EventID {
		t.Errorf("webhook-id %q, want the event id %q", got, ev.EventID)
	}
	ts, err := strconv.ParseInt(h.header.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not now", h.header.Get("webhook-timestamp"))
	}
	if sigs := strings.Fields(h.header.Get("webhook-signature")); len(sigs) != 1 {
		t.Errorf("webhook-signature %q: want one signature for one secret", sigs)
	}
	if err := verifyStandard(h, key(t, whsecNew)); err != nil {
		t.Errorf("the push does not verify as a Standard Webhook: %v", err)
	}
	if err := verifyStandard(h, key(t, whsecOld)); !errors.Is(err, merchant.ErrNoMatch) {
		t.Errorf("verifies with another secret: %v", err)
	}
	tampered := h
	tampered.body = bytes.Replace(h.body, []byte(`"payment":100`), []byte(`"payment":1`), 1)
	if bytes.Equal(tampered.body, h.body) {
		t.Fatalf("body %s has no payment to tamper with", h.body)
	}
	if err := verifyStandard(tampered, key(t, whsecNew)); !errors.Is(err, merchant.ErrNoMatch) {
		t.Errorf("tampered body: %v, want ErrNoMatch", err)
	}
	if h.contentType != "application/json" {
		t.Errorf("Content-Type %q, want JSON", h.contentType)
	}
	var body map[string]any
	if err := json.Unmarshal(h.body, &body); err != nil {
		t.Fatalf("body is not JSON: %s", h.body)
	}
	if _, has := body["sign"]; has || body["uuid"] != ev.UUID || body["orderId"] != ev.OrderID || body["time"] != h.header.Get("webhook-timestamp") {
		t.Errorf("body %s: want the JSON push without sign, with uuid and time = webhook-timestamp", h.body)
	}
	if h.eventID != ev.EventID || h.attempt != 1 {
		t.Errorf("X-Yzpay headers: %q %d", h.eventID, h.attempt)
	}
}

// Two secrets: two signatures, and a merchant holding either accepts.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.startSet(config.Notifier{EndpointSet: []config.Endpoint{{URL: m.url, Signing: config.SigningStandard,
		Secrets: []string{whsecNew, whsecOld}}}})
	e.publish(event("T1", "o-1", domain.StatusTradeSuccess))

	eventually(t, "the push", func() bool { return len(m.received()) == 1 })
	h := m.received()[0]
	if sigs := strings.Fields(h.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Errorf("webhook-signature %q: want two space-separated signatures", h.header.Get("webhook-signature"))
	}
	for _, s := range []string{whsecNew, whsecOld} {
		if err := verifyStandard(h, key(t, s)); err != nil {
			t.Errorf("a merchant holding %s… rejects: %v", s[:10], err)
		}
	}
}

// both: the original MD5 push, byte for byte as before, plus the headers.
func TestBothSigningKeepsTheMD5Push(t *testing.T) {
	e := newEnv(t)
	m := newMerchant(t, nil)
	e.startSet(config.Notifier{EndpointSet: []config.Endpoint{{URL: m.url, Signing: config.SigningBoth, Format: config.FormatForm,
		MD5Secret: "salt-of-this-endpoint", Secrets: []string{whsecNew}}}})
	ev := event("T1", "o-1", domain.StatusTradeSuccess)
	e.publish(ev)

	eventually(t, "the push", func() bool { return len(m.received()) == 1 })
	h := m.received()[0]
	if h.contentType != "application/x-www-form-urlencoded" || !h.push.Verify("salt-of-this-endpoint") || h.push.Verify(secret) {
		t.Errorf("not the form push signed with the endpoint's md5_secret: %s %+v", h.contentType, h.push)
	}
	if err := verifyStandard(h, key(t, whsecNew)); err != nil {
		t.Errorf("headers do not verify over the form body: %v", err)
	}
}

// Each endpoint gets only its statuses and retries on its own schedule.
func TestPerEndpointStatusesAndRetries(t *testing.T) {
	e := newEnv(t)
	paidOnly := newMerchant(t, nil)
	all := newMerchant(t, nil)
	down := newMerchant(t, func(int) int { return 503 })
	e.startSet(config.Notifier{EndpointSet: []config.Endpoint{
		{URL: paidOnly.url, Signing: config.SigningMD5, MD5Secret: secret, Statuses: map[string]bool{domain.StatusTradeSuccess: true}},
		{URL: all.url, Signing: config.SigningMD5, MD5Secret: secret},
		{URL: down.url, Signing: config.SigningMD5, MD5Secret: secret, Statuses: map[string]bool{domain.StatusTradeSuccess: true},
			RetrySchedule: []time.Duration{50 * time.Millisecond}},
	}})
	wait := event("T1", "o-1", domain.StatusWaitBuyerPay)
	paid := event("T1", "o-1", domain.StatusTradeSuccess)
	e.publish(wait)
	e.publish(paid)

	eventually(t, "both events through", func() bool { return len(all.received()) == 2 && e.settled() })
	if got := paidOnly.received(); len(got) != 1 || got[0].push.Status != domain.StatusTradeSuccess {
		t.Errorf("the TRADE_SUCCESS-only endpoint got %d pushes (want 1, TRADE_SUCCESS)", len(got))
	}
	if _, ok := e.deliveries(wait.EventID)[paidOnly.url]; ok {
		t.Error("a delivery was recorded for a status the endpoint does not take")
	}
	d := e.deliveries(paid.EventID)[down.url]
	if d.State() != domain.DeliveryFailed || d.Attempts != 2 || len(down.received()) != 2 {
		t.Errorf("endpoint with retry_schedule [50ms]: %+v after %d requests, want given up after 2 attempts", d, len(down.received()))
	}
}

func writeEndpoints(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// SIGHUP swaps the endpoint set: a push in flight to a removed endpoint
// still completes and is recorded; new events go to the new set; a bad file
// keeps the old set and logs an ERROR.
func TestReloadOnSIGHUP(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	first := newMerchant(t, func(n int) int {
		if n == 1 {
			<-release
		}
		return 200
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	second := newMerchant(t, nil)
	file := filepath.Join(t.TempDir(), "endpoints.yaml")
	writeEndpoints(t, file, "endpoints:\n  - url: "+first.url+"\n")
	cfg, err := config.LoadNotifier(config.FromMap(map[string]string{"PUSH_ENDPOINTS_FILE": file, "SELF_SECRET": secret,
		"NATS_URL": "nats://unused", "DATABASE_URL": "postgres://unused/db"}))
	if err != nil {
		t.Fatal(err)
	}
	_, m, logs := e.startSet(cfg)
	reloads := func(result string) float64 { return testutil.ToFloat64(m.EndpointReloads.WithLabelValues(result)) }

	ev1 := event("T1", "o-1", domain.StatusTradeSuccess)
	e.publish(ev1)
	eventually(t, "the push to the first endpoint to be in flight", func() bool { return len(first.received()) == 1 })

	writeEndpoints(t, file, "endpoints:\n  - url: "+second.url+"\n    signing: standard\n    secrets: ["+whsecNew+"]\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload", func() bool { return reloads("ok") == 1 })
	close(release)
	eventually(t, "the in-flight push to be recorded", func() bool {
		return e.deliveries(ev1.EventID)[first.url].State() == domain.DeliveryDelivered && e.settled()
	})

	ev2 := event("T2", "o-2", domain.StatusTradeSuccess)
	e.publish(ev2)
	eventually(t, "the new endpoint to get the next event", func() bool { return len(second.received()) == 1 && e.settled() })
	if err := verifyStandard(second.received()[0], key(t, whsecNew)); err != nil {
		t.Errorf("the reloaded endpoint's signing is not in use: %v", err)
	}
	if len(first.received()) != 1 {
		t.Errorf("the removed endpoint got %d pushes, want only the one in flight", len(first.received()))
	}

	writeEndpoints(t, file, "endpoints:\n  - url: "+second.url+"\n    signing: sha1\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed reload", func() bool { return reloads("failed") == 1 })
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "line 3: endpoints[0].signing") {
		t.Errorf("a bad file is not logged at ERROR naming line and field:\n%s", logs.String())
	}
	ev3 := event("T3", "o-3", domain.StatusTradeSuccess)
	e.publish(ev3)
	eventually(t, "the kept set to get the next event", func() bool { return len(second.received()) == 2 && e.settled() })
	if err := verifyStandard(second.received()[1], key(t, whsecNew)); err != nil {
		t.Errorf("after a bad reload the previous set is not in use: %v", err)
	}
}
