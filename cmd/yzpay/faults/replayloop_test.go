package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/store"
)

// An operator runs "replay all failed" while the merchant is still down.
// Each given-up delivery should be replayed once (and given up again after
// its one extra attempt); AllFailed must return. Today it lists the failed
// deliveries again after each round, finds the ones the notifier has
// already given up again, and replays them over and over until its context
// ends.
func TestReplayAllFailedWhileEndpointStillDown(t *testing.T) {
	h := newHarness(t, options{})
	h.merchant.down()
	s := h.startStream(5)
	<-s.done
	ctx := context.Background()
	eventually(t, 30*time.Second, "5 deliveries given up", func() bool {
		ds, err := h.st.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryFailed})
		return err == nil && len(ds) == 5
	})
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := replay.Replayer{Store: h.st, JS: h.js}.AllFailed(rctx, "")
	if err != nil || n != 5 {
		t.Errorf("AllFailed with the endpoint still down: replayed %d times (want 5), err %v", n, err)
	}
}
