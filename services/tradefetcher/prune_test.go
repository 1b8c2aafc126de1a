package tradefetcher

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
)

// TestPruneAttemptsKeepsTheRetentionWindow: the sweep lease holder deletes
// attempt-log rows older than ATTEMPT_LOG_RETENTION, more than one batch of
// them, and keeps every newer one; the metric counts what went.
func TestPruneAttemptsKeepsTheRetentionWindow(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	const old = pruneBatch + 234
	var batch []domain.Attempt
	for i := range old {
		batch = append(batch, domain.Attempt{EventID: "old", Endpoint: fmt.Sprintf("https://e%d.example", i), OrderID: "o",
			HTTPStatus: 500, NextAttemptAt: now, At: now.Add(-31 * 24 * time.Hour)})
	}
	batch = append(batch, domain.Attempt{EventID: "recent", Endpoint: "https://e.example", OrderID: "o",
		HTTPStatus: 200, Delivered: true, At: now.Add(-29 * 24 * time.Hour)})
	if _, err := e.store.RecordAttempts(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	s := NewSweeper(config.Sweep{AttemptLogRetention: 30 * 24 * time.Hour}, e.store, e.js, e.youzan, e.m, e.log)
	n, err := s.PruneAttempts(t.Context())
	if err != nil || n != old {
		t.Fatalf("PruneAttempts = %d, %v; want %d", n, err, old)
	}
	if got, _ := e.store.AttemptsForEvent(t.Context(), "old"); len(got) != 0 {
		t.Errorf("%d attempts past retention kept", len(got))
	}
	if got, _ := e.store.AttemptsForEvent(t.Context(), "recent"); len(got) != 1 {
		t.Errorf("attempt within retention deleted")
	}
	if v := testutil.ToFloat64(e.m.AttemptsPruned); v != old {
		t.Errorf("yzpay_attempt_log_pruned_total = %v, want %d", v, old)
	}
}
