package notifier

import (
	"fmt"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/servicetest"
)

// TestOrderLocksKeepDeliveryOrder: batch A (o-1's next status and o-2's
// WAIT_BUYER_PAY) waits for o-1 behind a slow batch; batch B, delivered
// after A with o-2's TRADE_SUCCESS, must not overtake A on o-2. If it did,
// TRADE_SUCCESS would reach every endpoint first and WAIT_BUYER_PAY would be
// superseded, never sent, even at a healthy endpoint (the flake of
// TestEndpointPauseProbeResume: the slow batch was one retrying an endpoint
// about to be paused).
func TestOrderLocksKeepDeliveryOrder(t *testing.T) {
	var l orderLocks
	releaseSlow := l.lock(1, []string{"o-1"})
	ran := make(chan string, 2)
	go func() {
		unlock := l.lock(2, []string{"o-1", "o-2"})
		ran <- "A"
		unlock()
	}()
	waitQueued(t, &l, "o-2", 1)
	go func() {
		unlock := l.lock(3, []string{"o-2"})
		ran <- "B"
		unlock()
	}()
	// B is either queued behind A or (the bug) already running.
	servicetest.Eventually(t, "batch B to run or queue", func() bool { return len(ran) > 0 || queued(&l, "o-2") >= 2 })
	releaseSlow()
	if first, second := <-ran, <-ran; first != "A" || second != "B" {
		t.Fatalf("batches ran %s then %s; want A (delivered first) then B", first, second)
	}
	servicetest.Eventually(t, "the queues to empty after every batch released its orders", func() bool {
		return queued(&l, "o-1")+queued(&l, "o-2") == 0
	})
}

// TestOrderLocksNoDeadlock: batches whose orders overlap in opposite
// delivery orders (a redelivery of one order batched with a new status of
// another) all run.
func TestOrderLocksNoDeadlock(t *testing.T) {
	var l orderLocks
	hold := l.lock(1, []string{"o-1", "o-2"})
	done := make(chan struct{}, 3)
	for i, ids := range [][]string{{"o-2", "o-1"}, {"o-1", "o-3"}, {"o-3", "o-2"}} {
		go func() {
			l.lock(uint64(10-i), ids)()
			done <- struct{}{}
		}()
	}
	waitQueued(t, &l, "o-1", 3)
	waitQueued(t, &l, "o-2", 3)
	hold()
	for range 3 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("batches deadlocked")
		}
	}
}

func queued(l *orderLocks, id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queues[id])
}

func waitQueued(t *testing.T, l *orderLocks, id string, want int) {
	t.Helper()
	servicetest.Eventually(t, fmt.Sprintf("%d batches queued for %s", want, id), func() bool { return queued(l, id) >= want })
}

// lock joins the queues and waits for the batch's turn, as admit and the
// handler do in two steps; it returns the release.
func (l *orderLocks) lock(seq uint64, ids []string) (unlock func()) {
	return l.join(seq, ids).wait()
}
