package notifier_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
)

// TestAttemptLog: an endpoint that fails once and then succeeds leaves two
// attempt-log rows with the HTTP status, how long each took and what the
// merchant answered (its echo of our secret redacted); an endpoint nobody
// listens on is logged as a connect failure.
func TestAttemptLog(t *testing.T) {
	e := newEnv(t)
	const latency = 30 * time.Millisecond
	var n atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// A merchant that takes a while to answer, so the duration shows it.
		time.Sleep(latency)
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "upstream down; debug: secret="+secret+" "+strings.Repeat("x", 4096))
			return
		}
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(flaky.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/notify"
	_ = ln.Close()

	e.start([]string{flaky.URL, closed}, nil)
	ev := event("T1", "o-1", domain.StatusTradePaid)
	e.publish(ev)
	eventually(t, "delivery to the flaky endpoint and the other given up", func() bool {
		ds := e.deliveries(ev.EventID)
		return ds[flaky.URL].State() == domain.DeliveryDelivered && ds[closed].State() == domain.DeliveryFailed
	})

	log, err := e.store.AttemptsForEvent(t.Context(), ev.EventID)
	if err != nil {
		t.Fatal(err)
	}
	var flakyRows, closedRows []domain.AttemptRecord
	for _, a := range log {
		switch a.Endpoint {
		case flaky.URL:
			flakyRows = append(flakyRows, a)
		case closed:
			closedRows = append(closedRows, a)
		}
	}
	if len(flakyRows) != 2 {
		t.Fatalf("flaky endpoint: %d attempts logged, want 2: %+v", len(flakyRows), flakyRows)
	}
	first, second := flakyRows[0], flakyRows[1]
	if first.Attempt != 1 || first.HTTPStatus != http.StatusBadGateway || first.ErrorClass != domain.AttemptErrorHTTP ||
		first.Outcome != domain.AttemptRetry || first.OrderID != "o-1" || first.Status != domain.StatusTradePaid {
		t.Errorf("failed attempt logged as %+v", first)
	}
	if !strings.HasPrefix(first.Excerpt, "upstream down") || len(first.Excerpt) > domain.MaxExcerptLen {
		t.Errorf("failed attempt excerpt %q (%d bytes), want the answer's first bytes, at most 1 KiB", first.Excerpt[:min(40, len(first.Excerpt))], len(first.Excerpt))
	}
	if strings.Contains(first.Excerpt, secret) || !strings.Contains(first.Excerpt, "[redacted]") {
		t.Errorf("our secret echoed by the merchant is in the attempt log: %q", first.Excerpt[:min(80, len(first.Excerpt))])
	}
	if second.Attempt != 2 || second.HTTPStatus != http.StatusOK || second.Excerpt != "success" ||
		second.ErrorClass != "" || second.Outcome != domain.AttemptDelivered || second.At.Before(first.At) {
		t.Errorf("delivered attempt logged as %+v", second)
	}
	for _, a := range flakyRows {
		if a.DurationMS < latency.Milliseconds() || a.DurationMS > 10_000 {
			t.Errorf("attempt %d took %d ms by the log; the merchant answered after %s", a.Attempt, a.DurationMS, latency)
		}
	}
	if want := len(retrySchedule) + 1; len(closedRows) != want {
		t.Fatalf("closed endpoint: %d attempts logged, want %d", len(closedRows), want)
	}
	for i, a := range closedRows {
		if a.Attempt != i+1 || a.HTTPStatus != 0 || a.ErrorClass != domain.AttemptErrorConnect || a.Excerpt != "" {
			t.Errorf("attempt to a closed port logged as %+v", a)
		}
	}
	if last := closedRows[len(closedRows)-1]; last.Outcome != domain.AttemptGivenUp {
		t.Errorf("last attempt to a closed port: outcome %q, want given_up", last.Outcome)
	}
}
