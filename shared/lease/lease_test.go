package lease_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yzpay/yzpay/shared/lease"
	"github.com/yzpay/yzpay/shared/natsjs/embedded"
)

const ttl = time.Second

// holder is one replica competing for the lease over its own connection.
type holder struct {
	name    string
	nc      *nats.Conn
	cancel  context.CancelFunc
	done    chan struct{}
	started chan time.Time // each time its work starts
	runs    atomic.Int64   // work periods started
}

// work is the guarded job: it counts how many replicas are inside it at
// once, across all holders.
type work struct {
	mu        sync.Mutex
	inside    int
	maxInside int
	sweeps    atomic.Int64
}

func (w *work) enter() {
	w.mu.Lock()
	w.inside++
	w.maxInside = max(w.maxInside, w.inside)
	w.mu.Unlock()
}

func (w *work) leave() {
	w.mu.Lock()
	w.inside--
	w.mu.Unlock()
}

func startServer(t *testing.T) *embedded.Server {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Listen: true, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

func startHolder(t *testing.T, ns *embedded.Server, name string, w *work) *holder {
	t.Helper()
	nc, err := ns.Connect(nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &holder{name: name, nc: nc, cancel: cancel, done: make(chan struct{}), started: make(chan time.Time, 100)}
	go func() {
		defer close(h.done)
		_ = lease.Run(ctx, js, lease.Options{Key: "sweeper", Holder: name, TTL: ttl,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
			func(ctx context.Context) error {
				h.runs.Add(1)
				h.started <- time.Now()
				// Sweep in a loop, as the sweeper does, until told to stop.
				for ctx.Err() == nil {
					w.enter()
					w.sweeps.Add(1)
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Millisecond):
					}
					w.leave()
				}
				return nil
			})
	}()
	t.Cleanup(func() {
		cancel()
		<-h.done
		nc.Close()
	})
	return h
}

// waitHolder waits until exactly one of hs has its work running and
// returns it, with the time its work started.
func waitHolder(t *testing.T, timeout time.Duration, hs ...*holder) (*holder, time.Time) {
	t.Helper()
	cases := time.After(timeout)
	for {
		for _, h := range hs {
			select {
			case at := <-h.started:
				return h, at
			default:
			}
		}
		select {
		case <-cases:
			t.Fatalf("no holder started its work within %s", timeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestLeaseNeverTwoHolders: three replicas compete; the holder is cut off
// from the broker (its connection closed, so it cannot renew) again and
// again. The work must pass on each time and never run on two at once.
func TestLeaseNeverTwoHolders(t *testing.T) {
	ns := startServer(t)
	w := &work{}
	var hs []*holder
	for i := range 3 {
		hs = append(hs, startHolder(t, ns, fmt.Sprintf("replica-%d", i), w))
	}
	live := hs
	for round := 0; round < 2; round++ {
		h, _ := waitHolder(t, 10*ttl, live...)
		// Let it sweep a while, then cut it off without any goodbye.
		before := w.sweeps.Load()
		deadline := time.Now().Add(10 * ttl)
		for w.sweeps.Load() < before+10 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		h.nc.Close()
		var rest []*holder
		for _, o := range live {
			if o != h {
				rest = append(rest, o)
			}
		}
		live = rest
	}
	waitHolder(t, 10*ttl, live...)
	w.mu.Lock()
	maxInside := w.maxInside
	w.mu.Unlock()
	if maxInside != 1 {
		t.Fatalf("%d replicas swept at once, want 1", maxInside)
	}
	var runs int64
	for _, h := range hs {
		runs += h.runs.Load()
	}
	if runs != 3 {
		t.Fatalf("work started %d times over two hand-overs, want 3 (once per holder)", runs)
	}
	t.Logf("3 holders, 2 hand-overs, %d sweeps, at most %d at once", w.sweeps.Load(), maxInside)
}

// TestLeaseTakeoverAfterHolderDies: the holder stops renewing (connection
// closed); the other replica must take over within the lease time.
func TestLeaseTakeoverAfterHolderDies(t *testing.T) {
	ns := startServer(t)
	w := &work{}
	a := startHolder(t, ns, "a", w)
	b := startHolder(t, ns, "b", w)
	first, _ := waitHolder(t, 10*ttl, a, b)
	other := b
	if first == b {
		other = a
	}
	killed := time.Now()
	first.nc.Close()
	// Generous: the lease expires at most TTL after the kill, and the other
	// looks every TTL/4; 3×TTL is broken only by a real regression.
	_, at := waitHolder(t, 3*ttl, other)
	took := at.Sub(killed)
	t.Logf("takeover %s after the holder was cut off (TTL %s)", took.Round(time.Millisecond), ttl)
	if took > 2*ttl {
		t.Fatalf("takeover took %s, want at most 2×TTL (%s)", took, 2*ttl)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.maxInside != 1 {
		t.Fatalf("%d replicas swept at once, want 1", w.maxInside)
	}
}

// TestLeaseReleasedOnStop: a holder that stops cleanly hands the lease over
// at once, without waiting out the TTL.
func TestLeaseReleasedOnStop(t *testing.T) {
	ns := startServer(t)
	w := &work{}
	a := startHolder(t, ns, "a", w)
	b := startHolder(t, ns, "b", w)
	first, _ := waitHolder(t, 10*ttl, a, b)
	other := b
	if first == b {
		other = a
	}
	stopped := time.Now()
	first.cancel()
	<-first.done
	_, at := waitHolder(t, 3*ttl, other)
	took := at.Sub(stopped)
	t.Logf("hand-over %s after a clean stop (TTL %s)", took.Round(time.Millisecond), ttl)
	// The other looks every TTL/4; a release that did not happen would
	// leave it waiting for the whole TTL.
	if took >= ttl*3/4 {
		t.Fatalf("hand-over took %s after a clean stop, want under %s", took, ttl*3/4)
	}
}
