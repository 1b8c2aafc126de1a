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
