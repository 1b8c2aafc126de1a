package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Probes from load balancers and Prometheus must not each cost a store and
// NATS round trip: within ReadyCacheFor, any number of /readyz calls,
// concurrent or not, run the checks once.
func TestReadyzCachesChecksForOneSecond(t *testing.T) {
	var storeCalls, natsCalls atomic.Int64
	_, readyz := Health(
		Check{Name: "store", Fn: func(context.Context) error { storeCalls.Add(1); time.Sleep(20 * time.Millisecond); return nil }},
		Check{Name: "nats", Fn: func(context.Context) error { natsCalls.Add(1); return nil }},
	)
	start := time.Now()
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code == http.StatusOK {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if time.Since(start) >= ReadyCacheFor {
		t.Skip("the machine is too slow to make 200 calls within the cache time")
	}
	if ok.Load() != 200 {
		t.Errorf("%d of 200 answers were 200", ok.Load())
	}
	if storeCalls.Load() != 1 || natsCalls.Load() != 1 {
		t.Errorf("200 /readyz calls ran the store check %d and the NATS check %d times, want 1 each", storeCalls.Load(), natsCalls.Load())
	}
	// Past the cache time the checks run again.
	deadline := time.Now().Add(5 * time.Second)
	for storeCalls.Load() < 2 && time.Now().Before(deadline) {
		readyz(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
		time.Sleep(50 * time.Millisecond)
	}
	if storeCalls.Load() != 2 {
		t.Errorf("after the cache time the store check ran %d times in all, want 2", storeCalls.Load())
	}
}

// A prober that hangs up mid-check must not leave a failure cached for the
// next caller.
func TestReadyzIgnoresTheCallersCancellation(t *testing.T) {
	_, readyz := Health(Check{Name: "store", Fn: func(ctx context.Context) error {
		time.Sleep(10 * time.Millisecond)
		return ctx.Err()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	readyz(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
	rec := httptest.NewRecorder()
	readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after a cancelled probe: %d %s", rec.Code, rec.Body)
	}
}
