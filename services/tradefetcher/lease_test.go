package tradefetcher

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/youzan"
)

// sweepProbe is one replica's Youzan port: it counts that replica's
// trades.qr.get calls (only sweeps make them) and, across replicas, how
// many are sweeping at the same moment.
type sweepProbe struct {
	*fakeYouzan
	shared *probeCounts
	name   string
}

type probeCounts struct {
	mu        sync.Mutex
	inside    int
	maxInside int
	calls     map[string]int
}

func (p *sweepProbe) QRTrades(ctx context.Context, q youzan.QRTradesQuery) (youzan.QRTradesPage, error) {
	c := p.shared
	c.mu.Lock()
	c.inside++
	c.maxInside = max(c.maxInside, c.inside)
	c.calls[p.name]++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inside--
		c.mu.Unlock()
	}()
	// Youzan takes a moment; sweeps on two replicas would overlap here.
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Millisecond):
	}
	return p.fakeYouzan.QRTrades(ctx, q)
}

func (c *probeCounts) snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.calls {
		out[k] = v
	}
	return out, c.maxInside
}

// TestSweepsRunOnOneReplicaAtATime: two tradefetchers share the broker and
// the store; only the lease holder sweeps, and when it stops the other
// takes over.
func TestSweepsRunOnOneReplicaAtATime(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.order(fmt.Sprintf("unpaid-%d", i), int64(9100+i))
	}
	counts := &probeCounts{calls: map[string]int{}}
	stops := map[string]func(){}
	for _, name := range []string{"a", "b"} {
		f, err := New(config.Tradefetcher{
			RetrySchedule: retrySchedule,
			StoreRetry:    100 * time.Millisecond,
			Grace:         time.Second,
			Sweep:         config.Sweep{Interval: 50 * time.Millisecond, OrderTTL: time.Hour, LeaseTTL: time.Second},
		}, Deps{Store: e.store, JS: e.js, Youzan: &sweepProbe{fakeYouzan: e.youzan, shared: counts, name: name},
			Metrics: e.m, Logger: e.log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		var once sync.Once
		stops[name] = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("fetcher %s stopped with %v", name, err)
				}
			})
		}
		t.Cleanup(stops[name])
	}
	waitFor := func(what string, cond func(map[string]int) bool) map[string]int {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			calls, _ := counts.snapshot()
			if cond(calls) {
				return calls
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; trades.qr.get calls per replica: %v", what, calls)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Several sweeps' worth of calls (5 orders each).
	calls := waitFor("30 reconciliation checks", func(c map[string]int) bool { return c["a"]+c["b"] >= 30 })
	holder, other := "a", "b"
	if calls["b"] > calls["a"] {
		holder, other = "b", "a"
	}
	if calls[other] != 0 {
		t.Fatalf("both replicas swept while both were up: %v", calls)
	}
	stops[holder]()
	waitFor("the other replica to take over the sweeps", func(c map[string]int) bool { return c[other] >= 10 })
	calls, maxInside := counts.snapshot()
	if maxInside != 1 {
		t.Fatalf("%d replicas swept at once, want 1 (calls %v)", maxInside, calls)
	}
	t.Logf("trades.qr.get calls per replica: %v; at most %d sweeping at once", calls, maxInside)
}
