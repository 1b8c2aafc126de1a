package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// A QR creation that fails at Youzan (here: a timeout) must not lock the
// order: the merchant's retry right after, with Youzan healthy again, must
// get its QR code promptly. Today the failed request keeps its creation
// claim for the whole ClaimFor (30 s by default), so the retry polls for
// 15 s and answers 503 "timeout", and the order cannot be created for 30 s.
func TestQRRetryAfterYouzanFailureNotBlocked(t *testing.T) {
	h := newHarness(t, options{youzanTimeout: 300 * time.Millisecond, claimFor: -1})
	p := &payment{orderID: "claim-after-timeout", price: 321}

	k := baseKnobs
	k.Latency = 500 * time.Millisecond // above the client's 300 ms timeout
	h.sb.SetKnobs(k)
	if _, err := h.createQR(p); err == nil {
		t.Fatal("QR creation succeeded although Youzan timed out")
	}
	h.sb.SetKnobs(sandbox.Knobs{})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := h.createQRCtx(ctx, p); err != nil {
		t.Fatalf("retry after Youzan recovered failed after %s: %v (the failed attempt's claim still blocks the order)",
			time.Since(start).Round(time.Millisecond), err)
	}
}
