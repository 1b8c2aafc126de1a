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
	toks := answers(t, 8, func(i int) (string, error) {
		c, err := s.BindCheckout(ctx(t), domain.Checkout{Token: fmt.Sprintf("tok-race-%020d", i), OrderID: "co-race"})
		return c.Token, err
	})
	if len(toks) != 1 {
		t.Fatalf("concurrent BindCheckout returned %d different tokens (%v), want 1", len(toks), toks)
	}
}

// answers runs call(0) … call(n-1) at once and counts the distinct answers
// of those that succeeded; a failed call fails the test.
func answers(t *testing.T, n int, call func(i int) (string, error)) map[string]int {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for i := range n {
		wg.Go(func() {
			a, err := call(i)
			if err != nil {
				t.Errorf("call %d of %d at once: %v", i, n, err)
				return
			}
			mu.Lock()
			seen[a]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return seen
}

// testNotifyURLs: an order's notify_url is kept with its page, the first
// binding's wins, and OrderState finds it for the notifier (orders without
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
	st, err := s.OrderState(ctx(t), []string{"nu-1", "nu-2", "nu-missing"})
	if m := st.NotifyURLs; err != nil || len(m) != 1 || m["nu-1"] != u {
		t.Fatalf("OrderState.NotifyURLs = %v, %v; want only nu-1 → %q", m, err, u)
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
	seen := answers(t, 8, func(i int) (string, error) {
		o, c, err := s.AttachQRAndCheckout(ctx(t), domain.QRCode{ID: int64(8100 + i), URL: fmt.Sprintf("u%d", i)},
			domain.Checkout{Token: fmt.Sprintf("tok-aq-race-%020d", i), OrderID: "aq-race"})
		return fmt.Sprintf("qr %d page %s", o.QRID, c.Token), err
	})
	if len(seen) != 1 {
		t.Fatalf("concurrent AttachQRAndCheckout returned %d different results (%v), want 1", len(seen), seen)
	}
}

// testOrderState: OrderState reads what OrdersByID, NotifyURLs and
// DeliveriesForOrders do.
func testOrderState(t *testing.T, s store.Store) {
	o1 := create(t, s, "os-1", 7101)
	o2 := create(t, s, "os-2", 7102)
	o3 := create(t, s, "os-3", 7103)
	create(t, s, "os-other", 7104)
	for _, c := range []domain.Checkout{
		{Token: "tok-os-1-000000000000000000", OrderID: "os-1", NotifyURL: "https://shop.example/n/1"},
		{Token: "tok-os-2-000000000000000000", OrderID: "os-2"},
		// Not asked for below: must not come back.
		{Token: "tok-os-other-0000000000000000", OrderID: "os-other", NotifyURL: "https://shop.example/n/other"},
	} {
		if _, err := s.BindCheckout(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now()
	// Recorded out of (event_id, endpoint) order, so that the order read
	// back is the read's own; one delivery is of an order that does not
	// exist, one of an order not asked for.
	if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{
		{EventID: "T3:TRADE_PAID", Endpoint: "https://a.example", OrderID: "os-3", Status: domain.StatusTradePaid, HTTPStatus: 200, Delivered: true, At: at},
		{EventID: "T1:TRADE_SUCCESS", Endpoint: "https://b.example", OrderID: "os-1", Status: domain.StatusTradeSuccess, HTTPStatus: 500, Error: "x", NextAttemptAt: at.Add(time.Minute), At: at},
		{EventID: "T1:TRADE_SUCCESS", Endpoint: "https://a.example", OrderID: "os-1", Status: domain.StatusTradeSuccess, Event: []byte(`{"v":1}`), HTTPStatus: 200, Delivered: true, At: at},
		{EventID: "T0:TRADE_SUCCESS", Endpoint: "https://a.example", OrderID: "os-missing", Status: domain.StatusTradeSuccess, HTTPStatus: 502, Error: "y", NextAttemptAt: at.Add(time.Minute), At: at},
		{EventID: "T9:TRADE_SUCCESS", Endpoint: "https://a.example", OrderID: "os-other", Status: domain.StatusTradeSuccess, HTTPStatus: 200, Delivered: true, At: at},
	}); err != nil {
		t.Fatal(err)
	}
	// What the data above holds, whichever way the backend reads it.
	all, err := s.OrderState(ctx(t), []string{"os-3", "os-1", "os-missing", "os-2"})
	if err != nil {
		t.Fatal(err)
	}
	orders := slices.Clone(all.Orders)
	slices.SortFunc(orders, func(a, b domain.Order) int { return strings.Compare(a.OrderID, b.OrderID) })
	if want := []domain.Order{o1, o2, o3}; !reflect.DeepEqual(orders, want) {
		t.Errorf("OrderState.Orders = %+v, want %+v", orders, want)
	}
	if want := map[string]string{"os-1": "https://shop.example/n/1"}; !maps.Equal(all.NotifyURLs, want) {
		t.Errorf("OrderState.NotifyURLs = %v, want %v", all.NotifyURLs, want)
	}
	var got []string
	for _, d := range all.Deliveries {
		got = append(got, fmt.Sprintf("%s %s %s %s attempts=%d http=%d delivered=%t event=%q error=%q next=%t",
			d.EventID, d.Endpoint, d.OrderID, d.Status, d.Attempts, d.LastHTTPStatus, !d.DeliveredAt.IsZero(), d.Event,
			d.LastError, !d.NextAttemptAt.IsZero()))
	}
	want := []string{
		`T0:TRADE_SUCCESS https://a.example os-missing TRADE_SUCCESS attempts=1 http=502 delivered=false event="" error="y" next=true`,
		`T1:TRADE_SUCCESS https://a.example os-1 TRADE_SUCCESS attempts=1 http=200 delivered=true event="{\"v\":1}" error="" next=false`,
		`T1:TRADE_SUCCESS https://b.example os-1 TRADE_SUCCESS attempts=1 http=500 delivered=false event="" error="x" next=true`,
		`T3:TRADE_PAID https://a.example os-3 TRADE_PAID attempts=1 http=200 delivered=true event="" error="" next=false`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("OrderState.Deliveries =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st, err := s.OrderState(ctx(t), nil); err != nil || len(st.Orders) != 0 || st.NotifyURLs == nil ||
		len(st.NotifyURLs) != 0 || len(st.Deliveries) != 0 {
		t.Errorf("OrderState(nil) = %+v, %v; want nothing and an empty map", st, err)
	}
	// More ids than one IN list holds (the SQLite store reads 500 at a
	// time): the orders asked for are found in every chunk.
	many := []string{"os-1"}
	for i := range 700 {
		many = append(many, fmt.Sprintf("os-none-%d", i))
		if i == 550 {
			many = append(many, "os-3", "os-missing")
		}
	}
	many = append(many, "os-2")
	// The same as OrdersByID and DeliveriesForOrders, and the notify_urls
	// stored above, field by field, for each set of ids.
	for _, ids := range [][]string{{"os-1", "os-2", "os-3", "os-missing"}, {"os-2"}, {"os-missing"}, nil, many} {
		got, err := s.OrderState(ctx(t), ids)
		if err != nil {
			t.Fatalf("OrderState(%d ids): %v", len(ids), err)
		}
		orders, err1 := s.OrdersByID(ctx(t), ids)
		ds, err2 := s.DeliveriesForOrders(ctx(t), ids)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		urls := map[string]string{}
		if slices.Contains(ids, "os-1") {
			urls["os-1"] = "https://shop.example/n/1"
		}
		sortOrders := func(os []domain.Order) []domain.Order {
			os = slices.Clone(os)
			slices.SortFunc(os, func(a, b domain.Order) int { return strings.Compare(a.OrderID, b.OrderID) })
			return os
		}
		if g, w := sortOrders(got.Orders), sortOrders(orders); len(g) != len(w) || len(w) > 0 && !reflect.DeepEqual(g, w) {
			t.Errorf("OrderState(%d ids).Orders = %+v, want %+v", len(ids), g, w)
		}
		if len(got.NotifyURLs) != len(urls) || !maps.Equal(got.NotifyURLs, urls) {
			t.Errorf("OrderState(%d ids).NotifyURLs = %v, want %v", len(ids), got.NotifyURLs, urls)
		}
		if len(got.Deliveries) != len(ds) || len(ds) > 0 && !reflect.DeepEqual(got.Deliveries, ds) {
			t.Errorf("OrderState(%d ids).Deliveries = %+v, want %+v", len(ids), got.Deliveries, ds)
		}
	}
}
