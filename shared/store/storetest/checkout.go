package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// testCheckout: one checkout page per order, the first binding wins and is
// found by its token; a page for a missing order or an unknown token is
// ErrNotFound (the gateway answers 404 without telling which).
func testCheckout(t *testing.T, s store.Store) {
	if _, err := s.BindCheckout(ctx(t), domain.Checkout{Token: "tok-missing-order-000000", OrderID: "nope"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("BindCheckout(missing order) = %v, want ErrNotFound", err)
	}
	create(t, s, "co-1", 7001)
	first := domain.Checkout{Token: "tok-first-0000000000000000", OrderID: "co-1", ReturnURL: "https://shop.example/done"}
	got, err := s.BindCheckout(ctx(t), first)
	if err != nil {
		t.Fatalf("BindCheckout: %v", err)
	}
	if got.Token != first.Token || got.ReturnURL != first.ReturnURL || got.OrderID != "co-1" || got.CreatedAt.IsZero() {
		t.Fatalf("BindCheckout = %+v, want %+v with a creation time", got, first)
	}
	checkUTC(t, "checkout created_at", got.CreatedAt)
	again, err := s.BindCheckout(ctx(t), domain.Checkout{Token: "tok-second-000000000000000", OrderID: "co-1", ReturnURL: ""})
	if err != nil {
		t.Fatalf("BindCheckout again: %v", err)
	}
	if again != got {
		t.Fatalf("second BindCheckout = %+v, want the first binding %+v", again, got)
	}
	byTok, err := s.CheckoutByToken(ctx(t), first.Token)
	if err != nil || byTok != got {
		t.Fatalf("CheckoutByToken = %+v, %v; want %+v", byTok, err, got)
	}
	if _, err := s.CheckoutByToken(ctx(t), "tok-second-000000000000000"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("CheckoutByToken(losing token) = %v, want ErrNotFound", err)
	}
}

// testCheckoutConcurrent: replicas creating the same order at once agree on
// one page.
func testCheckoutConcurrent(t *testing.T, s store.Store) {
	create(t, s, "co-race", 7002)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		toks = map[string]int{}
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.BindCheckout(ctx(t), domain.Checkout{Token: fmt.Sprintf("tok-race-%020d", i), OrderID: "co-race"})
			if err != nil {
				t.Errorf("BindCheckout: %v", err)
				return
			}
			mu.Lock()
			toks[c.Token]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(toks) != 1 {
		t.Fatalf("concurrent BindCheckout returned %d different tokens (%v), want 1", len(toks), toks)
	}
}

// testNotifyURLs: an order's notify_url is kept with its page, the first
// binding's wins, and NotifyURLs finds it for the notifier (orders without
// one, or unknown, are absent).
func testNotifyURLs(t *testing.T, s store.Store) {
	create(t, s, "nu-1", 7101)
	create(t, s, "nu-2", 7102)
	const u = "https://shop.example/notify?k=1"
	got, err := s.BindCheckout(ctx(t), domain.Checkout{Token: "tok-nu-1-00000000000000000", OrderID: "nu-1", NotifyURL: u})
	if err != nil || got.NotifyURL != u {
		t.Fatalf("BindCheckout with notify_url = %+v, %v; want NotifyURL %q", got, err, u)
	}
	again, err := s.BindCheckout(ctx(t), domain.Checkout{Token: "tok-nu-1-again-00000000000", OrderID: "nu-1"})
	if err != nil || again.NotifyURL != u {
		t.Fatalf("second BindCheckout = %+v, %v; want the first one's NotifyURL %q", again, err, u)
	}
	if _, err := s.BindCheckout(ctx(t), domain.Checkout{Token: "tok-nu-2-00000000000000000", OrderID: "nu-2"}); err != nil {
		t.Fatalf("BindCheckout: %v", err)
	}
	m, err := s.NotifyURLs(ctx(t), []string{"nu-1", "nu-2", "nu-missing"})
	if err != nil || len(m) != 1 || m["nu-1"] != u {
		t.Fatalf("NotifyURLs = %v, %v; want only nu-1 → %q", m, err, u)
	}
}
