package notifier

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/metrics"
)

// TestStaleHealthReadKeepsPause: healthTick read the store just before this
// replica paused the endpoint; applying that older row would make the
// replica send every retry to the paused endpoint until the next tick.
func TestStaleHealthReadKeepsPause(t *testing.T) {
	n := &Notifier{m: metrics.New(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.health.init()
	const url = "http://merchant.example/notify"
	now := time.Now()
	read := n.health.snapshot() // the tick's read starts: the row is active
	n.applyHealth(domain.EndpointHealth{Endpoint: url, State: domain.EndpointPaused, Since: now, FailingSince: now}, true, nil)
	if n.applyHealth(domain.EndpointHealth{Endpoint: url, State: domain.EndpointActive, FailingSince: now}, false, read) {
		t.Error("a row read before the pause was applied over it")
	}
	if !n.health.isPaused(url) {
		t.Fatal("the endpoint is no longer paused in this replica's view after a stale read")
	}
	// A read taken after the pause is the truth (an operator resumed it).
	read = n.health.snapshot()
	if !n.applyHealth(domain.EndpointHealth{Endpoint: url, State: domain.EndpointActive}, false, read) || n.health.isPaused(url) {
		t.Error("a fresh read that resumes the endpoint was not applied")
	}
}
