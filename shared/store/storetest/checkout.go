package storetest

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// testAttachQRAndCheckout: the one-call completion of an order stores what
// AttachQR then BindCheckout would, keeps the first QR and the first page on
// a retry, and writes nothing when it fails.
func testAttachQRAndCheckout(t *testing.T, s store.Store) {
	if _, err := s.Reserve(ctx(t), newOrder("aq-1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	first := domain.Checkout{Token: "tok-aq-1-first-00000000000", OrderID: "aq-1",
		ReturnURL: "https://shop.example/done", NotifyURL: "https://shop.example/notify"}
	o, c, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: 8001, URL: "https://qr.example/8001"}, first)
	if err != nil {
		t.Fatalf("AttachQRAndCheckout: %v", err)
	}
	if o.OrderID != "aq-1" || o.QRID != 8001 || o.QRURL != "https://qr.example/8001" || o.Status != domain.StatusWaitBuyerPay {
		t.Fatalf("AttachQRAndCheckout order = %+v", o)
	}
	if c.Token != first.Token || c.OrderID != "aq-1" || c.ReturnURL != first.ReturnURL || c.NotifyURL != first.NotifyURL || c.CreatedAt.IsZero() {
		t.Fatalf("AttachQRAndCheckout checkout = %+v, want %+v with a creation time", c, first)
	}
	checkUTC(t, "checkout created_at", c.CreatedAt)
	if got, err := s.OrderByID(ctx(t), "aq-1"); err != nil || got != o {
		t.Fatalf("OrderByID = %+v, %v; want %+v", got, err, o)
	}
	if got, err := s.CheckoutByToken(ctx(t), first.Token); err != nil || got != c {
		t.Fatalf("CheckoutByToken = %+v, %v; want %+v", got, err, c)
	}
	// The claim is gone with the QR bound: a retry of the create finds it.
	if r, err := s.Reserve(ctx(t), newOrder("aq-1"), time.Minute); err != nil || r.Claimed || r.Order != o {
		t.Fatalf("Reserve after AttachQRAndCheckout = %+v, %v; want unclaimed %+v", r, err, o)
	}

	// A second completion (a lapsed claim's holder) gets the first QR and page.
	o2, c2, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: 8002, URL: "u8002"},
		domain.Checkout{Token: "tok-aq-1-second-0000000000", OrderID: "aq-1"})
	if err != nil || o2 != o || c2 != c {
		t.Fatalf("second AttachQRAndCheckout = %+v, %+v, %v; want %+v, %+v", o2, c2, err, o, c)
	}
	if _, err := s.CheckoutByToken(ctx(t), "tok-aq-1-second-0000000000"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("CheckoutByToken(losing token) = %v, want ErrNotFound", err)
	}

	// An order with its QR but no page yet (AttachQR alone) gets the page.
	create(t, s, "aq-2", 8003)
	o3, c3, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: 8004, URL: "u8004"},
		domain.Checkout{Token: "tok-aq-2-00000000000000000", OrderID: "aq-2"})
	if err != nil || o3.QRID != 8003 || c3.Token != "tok-aq-2-00000000000000000" || c3.OrderID != "aq-2" {
		t.Fatalf("AttachQRAndCheckout on an order with a QR = %+v, %+v, %v; want QR 8003 and the new page", o3, c3, err)
	}

	// A missing order: ErrNotFound, and no page.
	if _, _, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: 8005, URL: "u"},
		domain.Checkout{Token: "tok-aq-missing-00000000000", OrderID: "aq-missing"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("AttachQRAndCheckout(missing order) = %v, want ErrNotFound", err)
	}
	if _, err := s.CheckoutByToken(ctx(t), "tok-aq-missing-00000000000"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("CheckoutByToken after a failed AttachQRAndCheckout = %v, want ErrNotFound", err)
	}

	// A QR bound to another order fails, and leaves neither QR nor page.
	if _, err := s.Reserve(ctx(t), newOrder("aq-3"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if o, c, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: 8001, URL: "u"},
		domain.Checkout{Token: "tok-aq-3-00000000000000000", OrderID: "aq-3"}); err == nil {
		t.Fatalf("AttachQRAndCheckout of a QR bound to another order succeeded: %+v, %+v", o, c)
	}
	if got, err := s.OrderByID(ctx(t), "aq-3"); err != nil || got.QRID != 0 {
		t.Fatalf("order after a failed AttachQRAndCheckout = %+v, %v; want no QR", got, err)
	}
	if _, err := s.CheckoutByToken(ctx(t), "tok-aq-3-00000000000000000"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("CheckoutByToken after a failed AttachQRAndCheckout = %v, want ErrNotFound", err)
	}
	if _, _, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: 0, URL: "u"},
		domain.Checkout{Token: "tok-aq-3-00000000000000000", OrderID: "aq-3"}); err == nil {
		t.Fatal("AttachQRAndCheckout with qr_id 0 succeeded")
	}
}

// testAttachQRAndCheckoutConcurrent: completions of one order racing (a
// lapsed claim and its successor) agree on one QR and one page.
func testAttachQRAndCheckoutConcurrent(t *testing.T, s store.Store) {
	if _, err := s.Reserve(ctx(t), newOrder("aq-race"), time.Minute); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, c, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: int64(8100 + i), URL: fmt.Sprintf("u%d", i)},
				domain.Checkout{Token: fmt.Sprintf("tok-aq-race-%020d", i), OrderID: "aq-race"})
			if err != nil {
				t.Errorf("AttachQRAndCheckout: %v", err)
				return
			}
			mu.Lock()
			seen[fmt.Sprintf("qr %d page %s", o.QRID, c.Token)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 1 {
		t.Fatalf("concurrent AttachQRAndCheckout returned %d different results (%v), want 1", len(seen), seen)
	}
}

// testOrderState: store.ReadOrderState (one round trip where the backend
// offers it) reads what OrdersByID, NotifyURLs and DeliveriesForOrders do.
func testOrderState(t *testing.T, s store.Store) {
	create(t, s, "os-1", 7101)
	create(t, s, "os-2", 7102)
	create(t, s, "os-3", 7103)
	if _, err := s.BindCheckout(ctx(t), domain.Checkout{Token: "tok-os-1-000000000000000000", OrderID: "os-1", NotifyURL: "https://shop.example/n/1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BindCheckout(ctx(t), domain.Checkout{Token: "tok-os-2-000000000000000000", OrderID: "os-2"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{
		{EventID: "T1:TRADE_SUCCESS", Endpoint: "https://a.example", OrderID: "os-1", Status: domain.StatusTradeSuccess, Event: []byte(`{"v":1}`), HTTPStatus: 200, Delivered: true, At: at},
		{EventID: "T1:TRADE_SUCCESS", Endpoint: "https://b.example", OrderID: "os-1", Status: domain.StatusTradeSuccess, HTTPStatus: 500, Error: "x", NextAttemptAt: at.Add(time.Minute), At: at},
		{EventID: "T3:TRADE_PAID", Endpoint: "https://a.example", OrderID: "os-3", Status: domain.StatusTradePaid, HTTPStatus: 200, Delivered: true, At: at},
	}); err != nil {
		t.Fatal(err)
	}
	// What the data above holds, whichever way the backend reads it: three
	// orders, one notify_url (os-2's page has none), two deliveries of
	// os-1's event and one of os-3's.
	all, err := store.ReadOrderState(ctx(t), s, []string{"os-1", "os-2", "os-3", "os-missing"})
	if err != nil {
		t.Fatal(err)
	}
	perOrder := map[string]int{}
	for _, d := range all.Deliveries {
		perOrder[d.OrderID]++
	}
	if len(all.Orders) != 3 || !maps.Equal(all.NotifyURLs, map[string]string{"os-1": "https://shop.example/n/1"}) ||
		!maps.Equal(perOrder, map[string]int{"os-1": 2, "os-3": 1}) {
		t.Errorf("ReadOrderState = %d orders, notify urls %v, deliveries per order %v; want 3, os-1's only, os-1: 2 and os-3: 1",
			len(all.Orders), all.NotifyURLs, perOrder)
	}
	for _, ids := range [][]string{{"os-1", "os-2", "os-3", "os-missing"}, {"os-2"}, {"os-missing"}, nil} {
		got, err := store.ReadOrderState(ctx(t), s, ids)
		if err != nil {
			t.Fatalf("ReadOrderState(%v): %v", ids, err)
		}
		orders, err1 := s.OrdersByID(ctx(t), ids)
		urls, err2 := s.NotifyURLs(ctx(t), ids)
		ds, err3 := s.DeliveriesForOrders(ctx(t), ids)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		sortOrders := func(os []domain.Order) []domain.Order {
			os = slices.Clone(os)
			slices.SortFunc(os, func(a, b domain.Order) int { return strings.Compare(a.OrderID, b.OrderID) })
			return os
		}
		if g, w := sortOrders(got.Orders), sortOrders(orders); !reflect.DeepEqual(g, w) {
			t.Errorf("ReadOrderState(%v).Orders = %+v, want %+v", ids, g, w)
		}
		if len(got.NotifyURLs) != len(urls) || !maps.Equal(got.NotifyURLs, urls) {
			t.Errorf("ReadOrderState(%v).NotifyURLs = %v, want %v", ids, got.NotifyURLs, urls)
		}
		if len(got.Deliveries) != len(ds) || len(ds) > 0 && !reflect.DeepEqual(got.Deliveries, ds) {
			t.Errorf("ReadOrderState(%v).Deliveries = %+v, want %+v", ids, got.Deliveries, ds)
		}
	}
}
