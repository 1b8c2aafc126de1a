// Package storetest is the contract every store.Store backend must meet: one
// suite of subtests (Run) and one set of benchmarks (Bench), run against
// the postgres and sqlite stores alike so that the embedded binary behaves exactly
// like production.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/yzpay/yzpay/shared/cputime"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// Run runs the contract suite. open must return a fresh, migrated, empty
// store for each call; Run closes it when the subtest ends. Subtests run in
// parallel, each with its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"ReserveIdempotent", testReserveIdempotent},
		{"ReserveValidates", testReserveValidates},
		{"ReserveConcurrent", testReserveConcurrent},
		{"ReserveAfterCrashedClaim", testReserveAfterCrashedClaim},
		{"ReleaseClaim", testReleaseClaim},
		{"AttachQRFirstWins", testAttachQRFirstWins},
		{"Lookups", testLookups},
		{"Lifecycle", testLifecycle},
		{"PaidFields", testPaidFields},
		{"SecondTradePays", testSecondTradePays},
		{"ConcurrentObservations", testConcurrentObservations},
		{"ConcurrentObservationsAfterPayment", testConcurrentObservationsAfterPayment},
		{"ConcurrentBatches", testConcurrentBatches},
		{"UnknownQR", testUnknownQR},
		{"Batch", testBatch},
		{"CloseExpired", testCloseExpired},
		{"UnpaidOrders", testUnpaidOrders},
		{"ListOrders", testListOrders},
		{"Deliveries", testDeliveries},
		{"DeliveryBatch", testDeliveryBatch},
		{"ParkedReceipts", testParkedReceipts},
		{"ParkedReceiptsLease", testParkedReceiptsLease},
		{"SupersededDelivery", testSupersededDelivery},
		{"OrdersAndDeliveriesByOrder", testByOrder},
		{"Checkout", testCheckout},
		{"CheckoutConcurrent", testCheckoutConcurrent},
		{"AttachQRAndCheckout", testAttachQRAndCheckout},
		{"AttachQRAndCheckoutConcurrent", testAttachQRAndCheckoutConcurrent},
		{"NotifyURLs", testNotifyURLs},
		{"OrderState", testOrderState},
		{"AttemptLog", testAttemptLog},
		{"OrderTimeline", testOrderTimeline},
		{"AttemptRetention", testAttemptRetention},
		{"Audit", testAudit},
		{"PaidSince", testPaidSince},
		{"EndpointHealth", testEndpointHealth},
		{"HeldMarkLeavesDeliveredAlone", testHeldMarkLeavesDeliveredAlone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// --- helpers ---

func ctx(t testing.TB) context.Context { return t.Context() }

func newOrder(id string) domain.NewOrder {
	return domain.NewOrder{OrderID: id, Name: "item " + id, Price: 990}
}

// create reserves the order and attaches QR qrID, as the gateway does.
func create(t testing.TB, s store.Store, id string, qrID int64) domain.Order {
	t.Helper()
	r, err := s.Reserve(ctx(t), newOrder(id), time.Minute)
	if err != nil {
		t.Fatalf("Reserve(%q): %v", id, err)
	}
	if !r.Claimed {
		t.Fatalf("Reserve(%q): not claimed on a new order", id)
	}
	if qrID == 0 {
		return r.Order
	}
	o, err := s.AttachQR(ctx(t), id, domain.QRCode{ID: qrID, URL: fmt.Sprintf("https://qr.example/%d", qrID)})
	if err != nil {
		t.Fatalf("AttachQR(%q): %v", id, err)
	}
	if o.QRID != qrID {
		t.Fatalf("AttachQR(%q) bound QR %d, want %d", id, o.QRID, qrID)
	}
	return o
}

func observe(t testing.TB, s store.Store, obs ...domain.Observation) []domain.Change {
	t.Helper()
	ch, err := s.RecordObservations(ctx(t), obs)
	if err != nil {
		t.Fatalf("RecordObservations: %v", err)
	}
	if len(ch) != len(obs) {
		t.Fatalf("RecordObservations returned %d changes for %d observations", len(ch), len(obs))
	}
	return ch
}

func obs(qrID int64, status string) domain.Observation {
	return domain.Observation{QRID: qrID, TID: fmt.Sprintf("T%d", qrID), Status: status, ObservedAt: time.Now()}
}

func paidObs(qrID int64, status string) domain.Observation {
	o := obs(qrID, status)
	o.Payment, o.BuyerID, o.PayType, o.PaidAt = 990, "buyer-1", "WEIXIN", time.Now()
	return o
}

func get(t testing.TB, s store.Store, id string) domain.Order {
	t.Helper()
	o, err := s.OrderByID(ctx(t), id)
	if err != nil {
		t.Fatalf("OrderByID(%q): %v", id, err)
	}
	return o
}

func ids(os []domain.Order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.OrderID
	}
	return out
}

// us is how times come back from a store: UTC, microseconds.
func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func checkUTC(t testing.TB, what string, ts ...time.Time) {
	t.Helper()
	for _, v := range ts {
		if !v.IsZero() && v.Location() != time.UTC {
			t.Errorf("%s: time %v not in UTC", what, v)
		}
		if v.Nanosecond()%1000 != 0 {
			t.Errorf("%s: time %v has sub-microsecond precision", what, v)
		}
	}
}

// eventually polls cond until it holds or the deadline passes: claims expire
// on a clock, and a fixed sleep would be either flaky or slow.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// --- orders ---

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testReserveIdempotent(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	n := newOrder("o-1")
	r1, err := s.Reserve(ctx(t), n, time.Minute)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	o := r1.Order
	if !r1.Claimed || o.OrderID != n.OrderID || o.Name != n.Name || o.Price != n.Price ||
		o.Status != domain.StatusWaitBuyerPay || o.QRID != 0 || o.EverPaid || o.TID != "" {
		t.Fatalf("first Reserve = %+v, want a claimed new order at WAIT_BUYER_PAY", r1)
	}
	if o.CreatedAt.Before(before) || o.UpdatedAt.IsZero() {
		t.Errorf("CreatedAt %v, UpdatedAt %v: not set to now", o.CreatedAt, o.UpdatedAt)
	}
	checkUTC(t, "Reserve", o.CreatedAt, o.UpdatedAt)

	r2, err := s.Reserve(ctx(t), n, time.Minute)
	if err != nil {
		t.Fatalf("second Reserve: %v", err)
	}
	if r2.Claimed || r2.Order.QRID != 0 || r2.Order.OrderID != n.OrderID || !r2.Order.CreatedAt.Equal(o.CreatedAt) {
		t.Fatalf("second Reserve during a live claim = %+v, want the same order, not claimed, no QR", r2)
	}

	for _, bad := range []domain.NewOrder{
		{OrderID: n.OrderID, Name: n.Name, Price: n.Price + 1},
		{OrderID: n.OrderID, Name: n.Name + "x", Price: n.Price},
	} {
		if _, err := s.Reserve(ctx(t), bad, time.Minute); !errors.Is(err, domain.ErrConflict) {
			t.Errorf("Reserve(%+v) error = %v, want ErrConflict", bad, err)
		}
	}

	attached, err := s.AttachQR(ctx(t), n.OrderID, domain.QRCode{ID: 42, URL: "https://qr.example/42"})
	if err != nil {
		t.Fatalf("AttachQR: %v", err)
	}
	if attached.QRID != 42 || attached.QRURL != "https://qr.example/42" {
		t.Fatalf("AttachQR = %+v", attached)
	}
	r3, err := s.Reserve(ctx(t), n, time.Minute)
	if err != nil {
		t.Fatalf("Reserve after AttachQR: %v", err)
	}
	if r3.Claimed || r3.Order != attached {
		t.Fatalf("Reserve after AttachQR = %+v, want unclaimed %+v", r3, attached)
	}
	if _, err := s.Reserve(ctx(t), domain.NewOrder{OrderID: n.OrderID, Name: n.Name, Price: 1}, time.Minute); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("conflicting Reserve after AttachQR error = %v, want ErrConflict", err)
	}
}

func testReserveValidates(t *testing.T, s store.Store) {
	for _, id := range []string{"", strings.Repeat("x", 65), strings.Repeat("订", 65)} {
		if _, err := s.Reserve(ctx(t), domain.NewOrder{OrderID: id, Name: "n", Price: 1}, time.Minute); err == nil {
			t.Errorf("Reserve with a %d-character order_id succeeded", utf8.RuneCountInString(id))
		}
	}
	// 64 characters is the limit, whatever their width in bytes.
	for _, id := range []string{strings.Repeat("x", 64), strings.Repeat("订", 64)} {
		if _, err := s.Reserve(ctx(t), domain.NewOrder{OrderID: id, Name: "n", Price: 1}, time.Minute); err != nil {
			t.Errorf("Reserve with a 64-character order_id: %v", err)
		}
	}
}

func testReserveConcurrent(t *testing.T, s store.Store) {
	const n = 50
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]store.Reservation, n)
		errs    = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Reserve(ctx(t), newOrder("same"), 10*time.Second)
		})
	}
	close(start)
	wg.Wait()
	claimed := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Reserve %d: %v", i, errs[i])
		}
		if results[i].Claimed {
			claimed++
		}
		if results[i].Order.OrderID != "same" || results[i].Order.QRID != 0 {
			t.Errorf("Reserve %d = %+v", i, results[i])
		}
	}
	if claimed != 1 {
		t.Errorf("%d of %d concurrent Reserves claimed the QR, want exactly 1", claimed, n)
	}
	all, err := s.ListOrders(ctx(t), store.OrderFilter{})
	if err != nil {
		t.Fatalf("ListOrders: %v", err)
	}
	if len(all) != 1 {
		t.Errorf("%d orders stored, want 1", len(all))
	}
}

func testReserveAfterCrashedClaim(t *testing.T, s store.Store) {
	n := newOrder("crashed")
	r, err := s.Reserve(ctx(t), n, time.Millisecond)
	if err != nil || !r.Claimed {
		t.Fatalf("Reserve = %+v, %v; want claimed", r, err)
	}
	// The claimant "crashes": it never attaches a QR. Once its claim expires
	// a retry must take over.
	eventually(t, 10*time.Second, "expired claim taken over", func() bool {
		r, err = s.Reserve(ctx(t), n, 10*time.Second)
		if err != nil {
			t.Fatalf("Reserve retry: %v", err)
		}
		if !r.Claimed && r.Order.QRID != 0 {
			t.Fatalf("Reserve retry returned a QR nobody attached: %+v", r)
		}
		return r.Claimed
	})
	// The new claim is live for 10s: others must wait.
	if r2, err := s.Reserve(ctx(t), n, 10*time.Second); err != nil || r2.Claimed {
		t.Fatalf("Reserve during the new claim = %+v, %v; want not claimed", r2, err)
	}
	o, err := s.AttachQR(ctx(t), n.OrderID, domain.QRCode{ID: 7, URL: "u7"})
	if err != nil || o.QRID != 7 {
		t.Fatalf("AttachQR = %+v, %v", o, err)
	}
	r3, err := s.Reserve(ctx(t), n, 10*time.Second)
	if err != nil || r3.Claimed || r3.Order.QRID != 7 {
		t.Fatalf("Reserve after completion = %+v, %v; want QR 7, not claimed", r3, err)
	}
}

// A holder that could not create the QR releases its claim, so the next
// request claims at once instead of waiting for the claim to lapse; a
// stale token releases nothing.
func testReleaseClaim(t *testing.T, s store.Store) {
	r, err := s.Reserve(ctx(t), newOrder("rel"), time.Hour)
	if err != nil || !r.Claimed || r.ClaimToken == "" {
		t.Fatalf("first Reserve: %+v %v", r, err)
	}
	if r2, _ := s.Reserve(ctx(t), newOrder("rel"), time.Hour); r2.Claimed {
		t.Fatal("a live claim was handed out twice")
	}
	if err := s.ReleaseClaim(ctx(t), "rel", "not-the-token"); err != nil {
		t.Fatal(err)
	}
	if r2, _ := s.Reserve(ctx(t), newOrder("rel"), time.Hour); r2.Claimed {
		t.Fatal("a wrong token released the claim")
	}
	if err := s.ReleaseClaim(ctx(t), "rel", r.ClaimToken); err != nil {
		t.Fatal(err)
	}
	r3, err := s.Reserve(ctx(t), newOrder("rel"), time.Hour)
	if err != nil || !r3.Claimed || r3.ClaimToken == r.ClaimToken {
		t.Fatalf("Reserve after release: %+v %v", r3, err)
	}
}

func testAttachQRFirstWins(t *testing.T, s store.Store) {
	create(t, s, "a", 0)
	first, err := s.AttachQR(ctx(t), "a", domain.QRCode{ID: 100, URL: "u100"})
	if err != nil || first.QRID != 100 || first.QRURL != "u100" {
		t.Fatalf("first AttachQR = %+v, %v", first, err)
	}
	second, err := s.AttachQR(ctx(t), "a", domain.QRCode{ID: 200, URL: "u200"})
	if err != nil {
		t.Fatalf("second AttachQR: %v", err)
	}
	if second.QRID != 100 || second.QRURL != "u100" {
		t.Errorf("second AttachQR = %+v, want the first QR kept", second)
	}
	if _, err := s.OrderByQRID(ctx(t), 200); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("OrderByQRID(losing QR) error = %v, want ErrNotFound", err)
	}
	if _, err := s.AttachQR(ctx(t), "missing", domain.QRCode{ID: 300, URL: "u"}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("AttachQR(missing order) error = %v, want ErrNotFound", err)
	}
	// A QR code belongs to one order only.
	create(t, s, "b", 0)
	if o, err := s.AttachQR(ctx(t), "b", domain.QRCode{ID: 100, URL: "u100"}); err == nil {
		t.Errorf("AttachQR of a QR bound to another order succeeded: %+v", o)
	}
}

func testLookups(t *testing.T, s store.Store) {
	o := create(t, s, "look", 11)
	ch := observe(t, s, obs(11, domain.StatusWaitBuyerPay))
	if ch[0].Order.TID != "T11" {
		t.Fatalf("tid not bound: %+v", ch[0].Order)
	}
	o = ch[0].Order
	checkUTC(t, "order", o.CreatedAt, o.UpdatedAt)
	byID, err := s.OrderByID(ctx(t), "look")
	if err != nil || byID != o {
		t.Errorf("OrderByID = %+v, %v; want %+v", byID, err, o)
	}
	byQR, err := s.OrderByQRID(ctx(t), 11)
	if err != nil || byQR != o {
		t.Errorf("OrderByQRID = %+v, %v; want %+v", byQR, err, o)
	}
	byTID, err := s.OrderByTID(ctx(t), "T11")
	if err != nil || byTID != o {
		t.Errorf("OrderByTID = %+v, %v; want %+v", byTID, err, o)
	}
	if _, err := s.OrderByID(ctx(t), "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("OrderByID(absent) error = %v, want ErrNotFound", err)
	}
	if _, err := s.OrderByQRID(ctx(t), 12); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("OrderByQRID(absent) error = %v, want ErrNotFound", err)
	}
	if _, err := s.OrderByTID(ctx(t), "T12"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("OrderByTID(absent) error = %v, want ErrNotFound", err)
	}
}

// expire is a Lifecycle step that calls CloseExpired instead of observing.
const expire = "(expire)"

func testLifecycle(t *testing.T, s store.Store) {
	type step struct {
		status      string
		wantChanged bool
		wantStatus  string
	}
	const (
		wait   = domain.StatusWaitBuyerPay
		paid   = domain.StatusTradePaid
		send   = domain.StatusWaitSellerSendGoods
		conf   = domain.StatusWaitBuyerConfirmGoods
		succ   = domain.StatusTradeSuccess
		closed = domain.StatusTradeClosed
	)
	cases := []struct {
		name     string
		steps    []step
		everPaid bool
	}{
		{"forward", []step{
			{wait, false, wait}, {paid, true, paid}, {send, true, send}, {conf, true, conf},
			{succ, true, succ}, {closed, true, closed}, {paid, false, closed}, {succ, false, closed},
		}, true},
		{"out of order", []step{
			{succ, true, succ}, {send, false, succ}, {paid, false, succ}, {wait, false, succ},
		}, true},
		{"repeated", []step{
			{paid, true, paid}, {paid, false, paid}, {domain.StatusPaid, false, paid}, {send, true, send}, {send, false, send},
		}, true},
		{"unknown status", []step{
			{"SOMETHING_NEW", false, wait}, {paid, true, paid}, {"SOMETHING_NEW", false, paid},
		}, true},
		{"closed after success", []step{
			{succ, true, succ}, {closed, true, closed}, {succ, false, closed},
		}, true},
		{"expired then paid", []step{
			{expire, true, closed}, {wait, false, closed}, {paid, true, paid}, {succ, true, succ},
			{closed, true, closed}, {paid, false, closed},
		}, true},
		{"closed unpaid then paid", []step{
			{closed, true, closed}, {wait, false, closed}, {succ, true, succ},
		}, true},
		{"expired stays closed", []step{
			{expire, true, closed}, {closed, false, closed}, {wait, false, closed}, {expire, false, closed},
		}, false},
		{"expire after payment does nothing", []step{
			{paid, true, paid}, {expire, false, paid},
		}, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("life-%d", i)
			qr := int64(1000 + i)
			create(t, s, id, qr)
			cur := wait
			for j, st := range c.steps {
				var ch domain.Change
				if st.status == expire {
					var err error
					ch, err = s.CloseExpired(ctx(t), id, time.Now())
					if err != nil {
						t.Fatalf("step %d: CloseExpired: %v", j, err)
					}
				} else {
					ch = observe(t, s, paidObs(qr, st.status))[0]
				}
				if ch.Changed != st.wantChanged || ch.Order.Status != st.wantStatus || ch.From != cur {
					t.Fatalf("step %d (%s from %s): Changed=%v Status=%s From=%s; want Changed=%v Status=%s From=%s",
						j, st.status, cur, ch.Changed, ch.Order.Status, ch.From, st.wantChanged, st.wantStatus, cur)
				}
				cur = st.wantStatus
			}
			o := get(t, s, id)
			if o.Status != cur || o.EverPaid != c.everPaid {
				t.Errorf("stored order: Status=%s EverPaid=%v; want %s, %v", o.Status, o.EverPaid, cur, c.everPaid)
			}
			if !o.EverPaid && (o.Payment != 0 || !o.PaidAt.IsZero()) {
				t.Errorf("never-paid order carries payment: %+v", o)
			}
		})
	}
}

func testPaidFields(t *testing.T, s store.Store) {
	create(t, s, "pf", 5)
	paidAt := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CST", 8*3600))
	ch := observe(t, s, domain.Observation{
		QRID: 5, TID: "T-first", Status: domain.StatusTradePaid, Payment: 990,
		BuyerID: "buyer-9", PayType: "ALIPAY", PaidAt: paidAt, ObservedAt: time.Now(),
	})[0]
	o := ch.Order
	if !ch.Changed || o.Status != domain.StatusTradePaid || !o.EverPaid || o.Payment != 990 ||
		o.BuyerID != "buyer-9" || o.PayType != "ALIPAY" || !o.PaidAt.Equal(us(paidAt)) || o.TID != "T-first" {
		t.Fatalf("after payment: %+v", ch)
	}
	checkUTC(t, "PaidAt", o.PaidAt, o.UpdatedAt)
	if o.PaidAt != us(paidAt) {
		t.Errorf("PaidAt = %v, want %v", o.PaidAt, us(paidAt))
	}
	if stored := get(t, s, "pf"); stored != o {
		t.Errorf("stored order %+v\n differs from the Change %+v", stored, o)
	}

	// Another trade of the same QR closing (a buyer who scanned and gave
	// up) must not close the paid order.
	ch = observe(t, s, domain.Observation{QRID: 5, TID: "T-second", Status: domain.StatusTradeClosed, ObservedAt: time.Now()})[0]
	if ch.Changed || ch.Order.Status == domain.StatusTradeClosed || ch.Order.TID != "T-first" {
		t.Fatalf("a close of another trade moved the paid order: %+v", ch)
	}
	if _, err := s.OrderByTID(ctx(t), "T-second"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("OrderByTID(second tid) error = %v, want ErrNotFound", err)
	}
	// Its own trade closing (a full refund) closes it and keeps what was paid.
	ch = observe(t, s, domain.Observation{QRID: 5, TID: "T-first", Status: domain.StatusTradeClosed, ObservedAt: time.Now()})[0]
	o = ch.Order
	if !ch.Changed || o.Status != domain.StatusTradeClosed || !o.EverPaid || o.Payment != 990 ||
		o.BuyerID != "buyer-9" || o.PayType != "ALIPAY" || o.PaidAt != us(paidAt) || o.TID != "T-first" {
		t.Fatalf("after close: %+v", ch)
	}
	if stored := get(t, s, "pf"); stored != o {
		t.Errorf("stored order %+v\n differs from the Change %+v", stored, o)
	}
}

// A second buyer scans the same QR: the first trade is abandoned, the
// second pays. The order follows the paying trade, and the abandoned one
// closing later changes nothing.
func testSecondTradePays(t *testing.T, s store.Store) {
	create(t, s, "two", 77)
	observe(t, s, domain.Observation{QRID: 77, TID: "T-abandoned", Status: domain.StatusWaitBuyerPay, ObservedAt: time.Now()})
	ch := observe(t, s, domain.Observation{QRID: 77, TID: "T-paid", Status: domain.StatusTradeSuccess, Payment: 990,
		BuyerID: "b2", ObservedAt: time.Now()})[0]
	if !ch.Changed || ch.Order.TID != "T-paid" || ch.Order.Status != domain.StatusTradeSuccess || !ch.Order.EverPaid {
		t.Fatalf("payment of the second trade: %+v", ch)
	}
	ch = observe(t, s, domain.Observation{QRID: 77, TID: "T-abandoned", Status: domain.StatusTradeClosed, ObservedAt: time.Now()})[0]
	if ch.Changed || ch.Order.Status != domain.StatusTradeSuccess || ch.Order.TID != "T-paid" {
		t.Fatalf("the abandoned trade's close moved the order: %+v", ch)
	}
	if o, err := s.OrderByTID(ctx(t), "T-paid"); err != nil || o.OrderID != "two" {
		t.Errorf("OrderByTID(T-paid) = %+v, %v", o, err)
	}
	// A wait on another trade never moves an order either.
	create(t, s, "three", 78)
	observe(t, s, domain.Observation{QRID: 78, TID: "T-1", Status: domain.StatusWaitBuyerPay, ObservedAt: time.Now()})
	if ch := observe(t, s, domain.Observation{QRID: 78, TID: "T-2", Status: domain.StatusTradeClosed, ObservedAt: time.Now()})[0]; ch.Changed {
		t.Errorf("another trade's close closed an unpaid order: %+v", ch)
	}
}

// raceStatuses records statuses for one order from one goroutine each and
// checks that the store serialized them: the Changed observations form one
// forward chain from the starting status to the furthest one, so every
// observation that advanced the order, and only those, reported Changed.
func raceStatuses(t *testing.T, s store.Store, qr int64, start string, statuses []string, want string) {
	var (
		wg      sync.WaitGroup
		gate    = make(chan struct{})
		changes = make([]domain.Change, len(statuses))
		errs    = make([]error, len(statuses))
	)
	for i, st := range statuses {
		wg.Go(func() {
			<-gate
			var ch []domain.Change
			ch, errs[i] = s.RecordObservations(ctx(t), []domain.Observation{paidObs(qr, st)})
			if errs[i] == nil {
				changes[i] = ch[0]
			}
		})
	}
	close(gate)
	wg.Wait()
	var chain []domain.Change
	for i, ch := range changes {
		if errs[i] != nil {
			t.Fatalf("RecordObservations(%s): %v", statuses[i], errs[i])
		}
		if ch.Changed {
			chain = append(chain, ch)
		}
	}
	slices.SortFunc(chain, func(a, b domain.Change) int { return domain.Rank(a.Order.Status) - domain.Rank(b.Order.Status) })
	cur := start
	for _, ch := range chain {
		if ch.From != cur || domain.Rank(ch.Order.Status) <= domain.Rank(cur) {
			t.Fatalf("Changed observations do not form one forward chain: %s -> %s after %s", ch.From, ch.Order.Status, cur)
		}
		cur = ch.Order.Status
	}
	o, err := s.OrderByQRID(ctx(t), qr)
	if err != nil {
		t.Fatal(err)
	}
	if cur != want || o.Status != want {
		t.Errorf("final status %s (chain ends at %s), want %s", o.Status, cur, want)
	}
	if !o.EverPaid {
		t.Errorf("order never marked paid: %+v", o)
	}
}

func shuffled(n int, from ...string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = from[i%len(from)]
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func testConcurrentObservations(t *testing.T, s store.Store) {
	create(t, s, "race", 77)
	statuses := shuffled(50, domain.StatusWaitBuyerPay, domain.StatusTradePaid, domain.StatusPaid, domain.StatusWaitConfirm,
		domain.StatusWaitSellerSendGoods, domain.StatusWaitBuyerConfirmGoods, domain.StatusTradeBuyerSigned,
		domain.StatusTradeSuccess, "UNKNOWN_STATUS")
	raceStatuses(t, s, 77, domain.StatusWaitBuyerPay, statuses, domain.StatusTradeSuccess)
}

func testConcurrentObservationsAfterPayment(t *testing.T, s store.Store) {
	create(t, s, "race-paid", 78)
	observe(t, s, paidObs(78, domain.StatusTradePaid))
	// Once paid, TRADE_CLOSED is the furthest and terminal.
	statuses := shuffled(50, domain.StatusTradePaid, domain.StatusWaitSellerSendGoods, domain.StatusTradeSuccess,
		domain.StatusTradeClosed, domain.StatusWaitBuyerPay)
	raceStatuses(t, s, 78, domain.StatusTradePaid, statuses, domain.StatusTradeClosed)
}

func testConcurrentBatches(t *testing.T, s store.Store) {
	// Batches touching the same orders in different orders must neither
	// deadlock nor double-count.
	const orders, workers = 5, 10
	for i := range orders {
		create(t, s, fmt.Sprintf("cb-%d", i), int64(500+i))
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		changed int
	)
	for range workers {
		wg.Go(func() {
			batch := make([]domain.Observation, orders)
			for i, j := range rand.Perm(orders) {
				batch[i] = paidObs(int64(500+j), domain.StatusTradePaid)
			}
			ch, err := s.RecordObservations(ctx(t), batch)
			if err != nil {
				t.Errorf("RecordObservations: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, c := range ch {
				if c.Changed {
					changed++
				}
			}
		})
	}
	wg.Wait()
	if changed != orders {
		t.Errorf("%d observations reported Changed, want %d (one per order)", changed, orders)
	}
}

func testUnknownQR(t *testing.T, s store.Store) {
	ch := observe(t, s, paidObs(999, domain.StatusTradePaid))
	if ch[0] != (domain.Change{}) {
		t.Errorf("observation of an unknown QR = %+v, want a zero Change", ch[0])
	}
	if ch, err := s.RecordObservations(ctx(t), nil); err != nil || len(ch) != 0 {
		t.Errorf("RecordObservations(nil) = %v, %v", ch, err)
	}
}

func testBatch(t *testing.T, s store.Store) {
	create(t, s, "A", 1)
	create(t, s, "B", 2)
	ch := observe(t, s,
		paidObs(1, domain.StatusTradePaid),
		obs(2, domain.StatusWaitBuyerPay),
		paidObs(99, domain.StatusTradePaid),
		paidObs(1, domain.StatusTradeSuccess),
		paidObs(2, domain.StatusTradePaid),
		paidObs(1, domain.StatusTradePaid),
	)
	want := []struct {
		orderID, status, from string
		changed               bool
	}{
		{"A", domain.StatusTradePaid, domain.StatusWaitBuyerPay, true},
		{"B", domain.StatusWaitBuyerPay, domain.StatusWaitBuyerPay, false},
		{"", "", "", false},
		{"A", domain.StatusTradeSuccess, domain.StatusTradePaid, true},
		{"B", domain.StatusTradePaid, domain.StatusWaitBuyerPay, true},
		{"A", domain.StatusTradeSuccess, domain.StatusTradeSuccess, false},
	}
	for i, w := range want {
		c := ch[i]
		if c.Order.OrderID != w.orderID || c.Order.Status != w.status || c.From != w.from || c.Changed != w.changed {
			t.Errorf("change %d = {%s %s from %s changed %v}, want %+v", i, c.Order.OrderID, c.Order.Status, c.From, c.Changed, w)
		}
	}
	if a := get(t, s, "A"); a.Status != domain.StatusTradeSuccess || a.TID != "T1" {
		t.Errorf("A stored as %+v", a)
	}
	if b := get(t, s, "B"); b.Status != domain.StatusTradePaid || b.TID != "T2" || !b.EverPaid {
		t.Errorf("B stored as %+v", b)
	}
}

func testCloseExpired(t *testing.T, s store.Store) {
	create(t, s, "unpaid", 1)
	ch, err := s.CloseExpired(ctx(t), "unpaid", time.Now())
	if err != nil {
		t.Fatalf("CloseExpired: %v", err)
	}
	if !ch.Changed || ch.From != domain.StatusWaitBuyerPay || ch.Order.Status != domain.StatusTradeClosed ||
		ch.Order.EverPaid || ch.Order.Payment != 0 {
		t.Fatalf("CloseExpired = %+v", ch)
	}
	if o := get(t, s, "unpaid"); o != ch.Order {
		t.Errorf("stored %+v, Change carried %+v", o, ch.Order)
	}
	ch, err = s.CloseExpired(ctx(t), "unpaid", time.Now())
	if err != nil || ch.Changed || ch.Order.Status != domain.StatusTradeClosed {
		t.Errorf("second CloseExpired = %+v, %v; want unchanged", ch, err)
	}

	create(t, s, "paid", 2)
	observe(t, s, paidObs(2, domain.StatusTradePaid))
	ch, err = s.CloseExpired(ctx(t), "paid", time.Now())
	if err != nil || ch.Changed || ch.Order.Status != domain.StatusTradePaid {
		t.Errorf("CloseExpired(paid) = %+v, %v; want unchanged", ch, err)
	}

	// An order whose QR was never created expires too.
	create(t, s, "no-qr", 0)
	if ch, err := s.CloseExpired(ctx(t), "no-qr", time.Now()); err != nil || !ch.Changed {
		t.Errorf("CloseExpired(no QR) = %+v, %v; want closed", ch, err)
	}

	if _, err := s.CloseExpired(ctx(t), "absent", time.Now()); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("CloseExpired(absent) error = %v, want ErrNotFound", err)
	}
}

func sortOrders(os []domain.Order) {
	slices.SortFunc(os, func(a, b domain.Order) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.OrderID, b.OrderID)
	})
}

func testUnpaidOrders(t *testing.T, s store.Store) {
	var all []domain.Order
	for i := range 8 {
		id := fmt.Sprintf("u-%d", i)
		qr := int64(10 + i)
		if i == 2 {
			qr = 0 // QR never created: nothing to poll
		}
		all = append(all, create(t, s, id, qr))
	}
	observe(t, s, paidObs(13, domain.StatusTradePaid)) // u-3 paid
	if _, err := s.CloseExpired(ctx(t), "u-4", time.Now()); err != nil {
		t.Fatal(err)
	}
	from, to := all[1].CreatedAt, all[7].CreatedAt
	var want []domain.Order
	for _, o := range all {
		if o.QRID != 0 && o.OrderID != "u-3" && o.OrderID != "u-4" &&
			!o.CreatedAt.Before(from) && o.CreatedAt.Before(to) {
			want = append(want, o)
		}
	}
	sortOrders(want)
	got, err := s.UnpaidOrders(ctx(t), from, to, 100)
	if err != nil {
		t.Fatalf("UnpaidOrders: %v", err)
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("UnpaidOrders = %v, want %v", ids(got), ids(want))
	}
	for _, id := range []string{"u-0", "u-2", "u-3", "u-4"} {
		if slices.Contains(ids(got), id) {
			t.Errorf("UnpaidOrders includes %s", id)
		}
	}
	if !slices.Contains(ids(got), "u-1") || !slices.Contains(ids(got), "u-5") {
		t.Errorf("UnpaidOrders = %v misses u-1 or u-5", ids(got))
	}
	got, err = s.UnpaidOrders(ctx(t), from, to, 2)
	if err != nil || !slices.Equal(ids(got), ids(want[:2])) {
		t.Errorf("UnpaidOrders(limit 2) = %v, %v; want %v", ids(got), err, ids(want[:2]))
	}
	got, err = s.UnpaidOrders(ctx(t), from, from, 100)
	if err != nil || len(got) != 0 {
		t.Errorf("UnpaidOrders(empty window) = %v, %v", ids(got), err)
	}
}

func testListOrders(t *testing.T, s store.Store) {
	const n = 105 // more than the default limit
	var all []domain.Order
	for i := range n {
		qr := int64(0)
		if i%3 == 0 {
			qr = int64(100 + i)
		}
		all = append(all, create(t, s, fmt.Sprintf("l-%03d", i), qr))
	}
	var batch []domain.Observation
	for i := 0; i < n; i += 6 {
		batch = append(batch, paidObs(int64(100+i), domain.StatusTradePaid))
	}
	for i, ch := range observe(t, s, batch...) {
		all[6*i] = ch.Order
	}
	sortOrders(all)

	// Keyset paging visits every order once, in order.
	var paged []domain.Order
	f := store.OrderFilter{Limit: 7}
	for page := 0; ; page++ {
		if page > n {
			t.Fatal("paging does not terminate")
		}
		got, err := s.ListOrders(ctx(t), f)
		if err != nil {
			t.Fatalf("ListOrders page %d: %v", page, err)
		}
		if len(got) > 7 {
			t.Fatalf("page %d has %d orders, limit 7", page, len(got))
		}
		paged = append(paged, got...)
		if len(got) < 7 {
			break
		}
		last := got[len(got)-1]
		f.AfterCreatedAt, f.AfterOrderID = last.CreatedAt, last.OrderID
	}
	if !slices.Equal(ids(paged), ids(all)) {
		t.Fatalf("paged listing = %v\nwant %v", ids(paged), ids(all))
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged orders differ from the ones written")
	}

	got, err := s.ListOrders(ctx(t), store.OrderFilter{})
	if err != nil || len(got) != 100 {
		t.Errorf("ListOrders(default limit) returned %d orders, %v; want 100", len(got), err)
	}
	got, err = s.ListOrders(ctx(t), store.OrderFilter{Limit: 5000})
	if err != nil || len(got) != n {
		t.Errorf("ListOrders(limit 5000) returned %d orders, %v; want %d", len(got), err, n)
	}

	var wantPaid []string
	for _, o := range all {
		if o.Status == domain.StatusTradePaid {
			wantPaid = append(wantPaid, o.OrderID)
		}
	}
	got, err = s.ListOrders(ctx(t), store.OrderFilter{Status: domain.StatusTradePaid, Limit: 1000})
	if err != nil || !slices.Equal(ids(got), wantPaid) || len(wantPaid) == 0 {
		t.Errorf("ListOrders(status) = %v, %v; want %v", ids(got), err, wantPaid)
	}

	from, to := all[10].CreatedAt, all[50].CreatedAt
	var wantRange []string
	for _, o := range all {
		if !o.CreatedAt.Before(from) && o.CreatedAt.Before(to) {
			wantRange = append(wantRange, o.OrderID)
		}
	}
	got, err = s.ListOrders(ctx(t), store.OrderFilter{CreatedAfter: from, CreatedBefore: to, Limit: 1000})
	if err != nil || !slices.Equal(ids(got), wantRange) {
		t.Errorf("ListOrders(range) = %v, %v; want %v", ids(got), err, wantRange)
	}
}

// --- deliveries ---

func testDeliveries(t *testing.T, s store.Store) {
	// Attempt times are in the past so that ReopenDelivery (which stamps
	// now) sorts after them.
	base := time.Now().Add(-time.Hour)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	event := []byte(`{"event_id":"ev1","status":"TRADE_PAID"}`)
	longErr := strings.Repeat("错", 200) + "\xff" // 600 bytes and invalid UTF-8

	record := func(a domain.Attempt) domain.Delivery {
		t.Helper()
		ds, err := s.RecordAttempts(ctx(t), []domain.Attempt{a})
		if err != nil {
			t.Fatalf("RecordAttempts: %v", err)
		}
		if len(ds) != 1 {
			t.Fatalf("RecordAttempts returned %d deliveries", len(ds))
		}
		checkUTC(t, "delivery", ds[0].CreatedAt, ds[0].UpdatedAt, ds[0].NextAttemptAt, ds[0].DeliveredAt, ds[0].GivenUpAt)
		return ds[0]
	}

	d := record(domain.Attempt{EventID: "ev1", Endpoint: "https://a.example/hook", OrderID: "o1", Status: "TRADE_PAID",
		Event: event, HTTPStatus: 500, Error: longErr, NextAttemptAt: at(60), At: at(0)})
	if d.Attempts != 1 || d.State() != domain.DeliveryPending || d.LastHTTPStatus != 500 || d.OrderID != "o1" ||
		d.Status != "TRADE_PAID" || string(d.Event) != string(event) || d.NextAttemptAt != us(at(60)) ||
		d.CreatedAt != us(at(0)) || d.UpdatedAt != us(at(0)) {
		t.Fatalf("first attempt: %+v", d)
	}
	if len(d.LastError) > 500 || !utf8.ValidString(d.LastError) || !strings.HasPrefix(longErr, d.LastError) || len(d.LastError) < 490 {
		t.Errorf("LastError not truncated to <= 500 bytes of valid UTF-8: %d bytes %q", len(d.LastError), d.LastError)
	}

	d = record(domain.Attempt{EventID: "ev1", Endpoint: "https://a.example/hook", OrderID: "o1", Status: "TRADE_PAID",
		Event: []byte(`{"other":1}`), HTTPStatus: 200, Delivered: true, At: at(60)})
	if d.Attempts != 2 || d.State() != domain.DeliveryDelivered || d.DeliveredAt != us(at(60)) || d.LastError != "" ||
		d.LastHTTPStatus != 200 || !d.NextAttemptAt.IsZero() || string(d.Event) != string(event) || d.CreatedAt != us(at(0)) {
		t.Fatalf("delivered attempt: %+v", d)
	}
	// A stray later attempt does not undo delivery.
	d = record(domain.Attempt{EventID: "ev1", Endpoint: "https://a.example/hook", HTTPStatus: 502, Error: "bad gateway", At: at(61)})
	if d.Attempts != 3 || d.State() != domain.DeliveryDelivered || d.DeliveredAt != us(at(60)) || d.OrderID != "o1" {
		t.Fatalf("attempt after delivery: %+v", d)
	}

	d = record(domain.Attempt{EventID: "ev1", Endpoint: "https://b.example/hook", OrderID: "o1", Status: "TRADE_PAID",
		Event: event, Error: "timeout", GiveUp: true, At: at(62)})
	if d.Attempts != 1 || d.State() != domain.DeliveryFailed || d.GivenUpAt != us(at(62)) || d.LastHTTPStatus != 0 {
		t.Fatalf("given-up attempt: %+v", d)
	}
	record(domain.Attempt{EventID: "ev2", Endpoint: "https://a.example/hook", OrderID: "o2", Status: "TRADE_SUCCESS",
		Event: []byte(`{}`), HTTPStatus: 503, NextAttemptAt: at(200), At: at(63)})

	ev1, err := s.DeliveriesForEvent(ctx(t), "ev1")
	if err != nil || len(ev1) != 2 || ev1[0].Endpoint != "https://a.example/hook" || ev1[1].Endpoint != "https://b.example/hook" {
		t.Fatalf("DeliveriesForEvent = %+v, %v", ev1, err)
	}
	if none, err := s.DeliveriesForEvent(ctx(t), "ev-none"); err != nil || len(none) != 0 {
		t.Errorf("DeliveriesForEvent(absent) = %+v, %v", none, err)
	}

	key := func(ds []domain.Delivery) []string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d.EventID + " " + d.Endpoint
		}
		return out
	}
	for _, c := range []struct {
		f    store.DeliveryFilter
		want []string
	}{
		{store.DeliveryFilter{}, []string{"ev1 https://a.example/hook", "ev1 https://b.example/hook", "ev2 https://a.example/hook"}},
		{store.DeliveryFilter{State: domain.DeliveryPending}, []string{"ev2 https://a.example/hook"}},
		{store.DeliveryFilter{State: domain.DeliveryDelivered}, []string{"ev1 https://a.example/hook"}},
		{store.DeliveryFilter{State: domain.DeliveryFailed}, []string{"ev1 https://b.example/hook"}},
		{store.DeliveryFilter{Endpoint: "https://a.example/hook"}, []string{"ev1 https://a.example/hook", "ev2 https://a.example/hook"}},
		{store.DeliveryFilter{Endpoint: "https://b.example/hook", State: domain.DeliveryDelivered}, []string{}},
		{store.DeliveryFilter{Limit: 1}, []string{"ev1 https://a.example/hook"}},
	} {
		got, err := s.ListDeliveries(ctx(t), c.f)
		if err != nil || !slices.Equal(key(got), c.want) {
			t.Errorf("ListDeliveries(%+v) = %v, %v; want %v", c.f, key(got), err, c.want)
		}
	}
	if _, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{State: "bogus"}); err == nil {
		t.Error("ListDeliveries(unknown state) succeeded")
	}

	// Reopening a given-up delivery keeps counting attempts.
	d, err = s.ReopenDelivery(ctx(t), "ev1", "https://b.example/hook")
	if err != nil || d.State() != domain.DeliveryPending || d.Attempts != 1 || !d.GivenUpAt.IsZero() || string(d.Event) != string(event) {
		t.Fatalf("ReopenDelivery(failed) = %+v, %v", d, err)
	}
	d = record(domain.Attempt{EventID: "ev1", Endpoint: "https://b.example/hook", HTTPStatus: 200, Delivered: true, At: time.Now()})
	if d.Attempts != 2 || d.State() != domain.DeliveryDelivered {
		t.Errorf("attempt after reopen: %+v", d)
	}
	d, err = s.ReopenDelivery(ctx(t), "ev1", "https://a.example/hook")
	if err != nil || d.State() != domain.DeliveryPending || d.Attempts != 3 || !d.DeliveredAt.IsZero() {
		t.Fatalf("ReopenDelivery(delivered) = %+v, %v", d, err)
	}
	if got, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{State: domain.DeliveryPending}); err != nil ||
		!slices.Equal(key(got), []string{"ev2 https://a.example/hook", "ev1 https://a.example/hook"}) {
		t.Errorf("pending after reopen = %v, %v", key(got), err)
	}
	if _, err := s.ReopenDelivery(ctx(t), "ev-none", "https://a.example/hook"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("ReopenDelivery(absent) error = %v, want ErrNotFound", err)
	}
}

func testDeliveryBatch(t *testing.T, s store.Store) {
	now := time.Now()
	a := domain.Attempt{EventID: "e", Endpoint: "x", OrderID: "o", Status: "TRADE_PAID", Event: []byte(`{}`), HTTPStatus: 500, At: now}
	b := a
	b.Endpoint = "y"
	ds, err := s.RecordAttempts(ctx(t), []domain.Attempt{a, b, a})
	if err != nil || len(ds) != 3 {
		t.Fatalf("RecordAttempts = %+v, %v", ds, err)
	}
	if ds[0].Attempts != 1 || ds[1].Attempts != 1 || ds[2].Attempts != 2 || ds[2].Endpoint != "x" {
		t.Errorf("attempt counts = %d %d %d, want 1 1 2", ds[0].Attempts, ds[1].Attempts, ds[2].Attempts)
	}
	if ds, err := s.RecordAttempts(ctx(t), nil); err != nil || len(ds) != 0 {
		t.Errorf("RecordAttempts(nil) = %v, %v", ds, err)
	}
}

// A superseded delivery sends nothing: it keeps its attempt count and last
// answer, says why, is final for later attempts, and lists as superseded.
func testSupersededDelivery(t *testing.T, s store.Store) {
	now := time.Now()
	fail := domain.Attempt{EventID: "e", Endpoint: "x", OrderID: "o", Status: "WAIT_SELLER_SEND_GOODS", Event: []byte(`{}`),
		HTTPStatus: 500, Error: "HTTP 500", NextAttemptAt: now.Add(time.Minute), At: now}
	sup := domain.Attempt{EventID: "e", Endpoint: "x", OrderID: "o", Status: "WAIT_SELLER_SEND_GOODS", Event: []byte(`{}`),
		Superseded: true, Error: "superseded by TRADE_SUCCESS", At: now.Add(time.Second)}
	fresh := sup
	fresh.Endpoint = "y"
	ds, err := s.RecordAttempts(ctx(t), []domain.Attempt{fail, sup, fresh})
	if err != nil || len(ds) != 3 {
		t.Fatalf("RecordAttempts = %+v, %v", ds, err)
	}
	d := ds[1]
	if d.State() != domain.DeliverySuperseded || d.Attempts != 1 || d.LastHTTPStatus != 500 ||
		d.LastError != "superseded by TRADE_SUCCESS" || !d.NextAttemptAt.IsZero() || d.SupersededAt != us(now.Add(time.Second)) {
		t.Errorf("superseded after a failure: %+v", d)
	}
	if d := ds[2]; d.State() != domain.DeliverySuperseded || d.Attempts != 0 {
		t.Errorf("superseded before any attempt: %+v", d)
	}
	got, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{State: domain.DeliverySuperseded})
	if err != nil || len(got) != 2 {
		t.Errorf("ListDeliveries(superseded) = %+v, %v", got, err)
	}
	if got, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{State: domain.DeliveryPending}); err != nil || len(got) != 0 {
		t.Errorf("a superseded delivery lists as pending: %+v, %v", got, err)
	}
}

func testByOrder(t *testing.T, s store.Store) {
	create(t, s, "o1", 9101)
	create(t, s, "o2", 9102)
	os, err := s.OrdersByID(ctx(t), []string{"o2", "absent", "o1"})
	if err != nil || len(os) != 2 {
		t.Fatalf("OrdersByID = %+v, %v", os, err)
	}
	sortOrders(os)
	if os[0].OrderID != "o1" || os[0].QRID != 9101 || os[1].OrderID != "o2" {
		t.Errorf("OrdersByID = %+v", os)
	}
	if os, err := s.OrdersByID(ctx(t), nil); err != nil || len(os) != 0 {
		t.Errorf("OrdersByID(nil) = %+v, %v", os, err)
	}
	now := time.Now()
	a := func(ev, ep, order string) domain.Attempt {
		return domain.Attempt{EventID: ev, Endpoint: ep, OrderID: order, Status: "TRADE_PAID", Event: []byte(`{}`), HTTPStatus: 200, Delivered: true, At: now}
	}
	if _, err := s.RecordAttempts(ctx(t), []domain.Attempt{a("e2", "x", "o1"), a("e1", "y", "o1"), a("e1", "x", "o1"), a("e3", "x", "o2")}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.DeliveriesForOrders(ctx(t), []string{"o1", "absent"})
	var keys []string
	for _, d := range ds {
		keys = append(keys, d.EventID+" "+d.Endpoint)
	}
	if err != nil || !slices.Equal(keys, []string{"e1 x", "e1 y", "e2 x"}) {
		t.Errorf("DeliveriesForOrders = %v, %v", keys, err)
	}
}

// --- benchmarks ---

// cpuPerOp starts counting the process's CPU time; the func it returns
// reports it per op as cpu-ns/op. On a shared machine ns/op (wall time)
// mostly measures the other jobs; the CPU an op takes is what counts
// (issue 16). For the Postgres store it leaves out the server's CPU.
func cpuPerOp(b *testing.B) func() {
	c0, ok0 := cputime.Self()
	return func() {
		if c1, ok1 := cputime.Self(); ok0 && ok1 && b.N > 0 {
			b.ReportMetric(float64(c1-c0)/float64(b.N), "cpu-ns/op")
		}
	}
}

// Bench runs the store benchmarks. open must return a fresh, migrated, empty
// store; Bench closes it.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	setup := func(b *testing.B) store.Store {
		s := open(b)
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	// Orders are created one after another: each is claimed (Reserve), then
	// completed by complete.
	creating := func(name string, complete func(b *testing.B, s store.Store, i int64, id string) error) {
		b.Run(name, func(b *testing.B) {
			s := setup(b)
			var i int64
			defer cpuPerOp(b)()
			for b.Loop() {
				i++
				id := fmt.Sprintf("bench-%d", i)
				if _, err := s.Reserve(b.Context(), newOrder(id), time.Minute); err != nil {
					b.Fatal(err)
				}
				if err := complete(b, s, i, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	creating("CreateOrder", func(b *testing.B, s store.Store, i int64, id string) error {
		_, err := s.AttachQR(b.Context(), id, domain.QRCode{ID: i, URL: "u"})
		return err
	})
	// An order as the gateway creates it: the claim, then the QR and the
	// checkout page in two calls (before issue 16) or in one.
	creating("CreateOrderCheckout", func(b *testing.B, s store.Store, i int64, id string) error {
		if _, err := s.AttachQR(b.Context(), id, domain.QRCode{ID: i, URL: "u"}); err != nil {
			return err
		}
		_, err := s.BindCheckout(b.Context(), domain.Checkout{Token: fmt.Sprintf("tok-bench-%020d", i), OrderID: id})
		return err
	})
	creating("CreateOrderCheckoutOneCall", func(b *testing.B, s store.Store, i int64, id string) error {
		_, _, err := s.AttachQRAndCheckout(b.Context(), domain.QRCode{ID: i, URL: "u"},
			domain.Checkout{Token: fmt.Sprintf("tok-bench-%020d", i), OrderID: id})
		return err
	})
	// Observations cycle over many orders through the lifecycle, so most
	// are repeats that change nothing, as in production polling.
	lifecycle := []string{domain.StatusWaitBuyerPay, domain.StatusWaitBuyerPay, domain.StatusTradePaid,
		domain.StatusWaitSellerSendGoods, domain.StatusTradeSuccess, domain.StatusTradeSuccess}
	const orders = 512
	seed := func(b *testing.B, s store.Store) {
		for i := range orders {
			create(b, s, fmt.Sprintf("bench-%d", i), int64(i+1))
		}
	}
	b.Run("RecordObservation", func(b *testing.B) {
		s := setup(b)
		seed(b, s)
		i := 0
		defer cpuPerOp(b)()
		for b.Loop() {
			ob := paidObs(int64(i%orders+1), lifecycle[(i/orders)%len(lifecycle)])
			if _, err := s.RecordObservations(b.Context(), []domain.Observation{ob}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// 64 per batch is the notifier's and tradefetcher's largest batch; 8 is
	// nearer what they take at 1000/s, where round trips weigh more.
	for _, size := range []int{8, 64} {
		b.Run(fmt.Sprintf("RecordObservationBatch%d", size), func(b *testing.B) {
			s := setup(b)
			seed(b, s)
			i := 0
			batch := make([]domain.Observation, size)
			defer cpuPerOp(b)()
			for b.Loop() {
				for j := range batch {
					batch[j] = paidObs(int64(i%orders+1), lifecycle[(i/orders)%len(lifecycle)])
					i++
				}
				if _, err := s.RecordObservations(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "obs/s")
		})
	}
	// One delivered payment per element, as the notifier records them: the
	// cost of RecordAttempts with the attempt log. 1 is the notifier's usual
	// batch at 1000/s.
	for _, size := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("RecordAttemptsDelivered%d", size), func(b *testing.B) {
			s := setup(b)
			i := 0
			batch := make([]domain.Attempt, size)
			defer cpuPerOp(b)()
			for b.Loop() {
				for j := range batch {
					batch[j] = domain.Attempt{EventID: fmt.Sprintf("T%d:TRADE_SUCCESS", i), Endpoint: "https://shop.example/notify",
						OrderID: fmt.Sprintf("bench-%d", i), Status: domain.StatusTradeSuccess, Event: []byte(`{"v":1}`),
						HTTPStatus: 200, Delivered: true, Excerpt: "success", Duration: 12 * time.Millisecond, At: time.Now()}
					i++
				}
				if _, err := s.RecordAttempts(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/payment")
		})
	}
	// Order creation as the gateway sees it under load: 32 API clients at
	// once, each order a Reserve then an AttachQRAndCheckout. Concurrent
	// writes are where a store can share work between callers (one commit
	// for several transactions), which the serial benchmarks above cannot
	// show. cpu-ns/op is the CPU per created order.
	b.Run("CreateOrderParallel32", func(b *testing.B) {
		s := setup(b)
		var next atomic.Int64
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
		defer cpuPerOp(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1)
				id := fmt.Sprintf("bench-%d", i)
				if _, err := s.Reserve(b.Context(), newOrder(id), time.Minute); err != nil {
					b.Error(err)
					return
				}
				if _, _, err := s.AttachQRAndCheckout(b.Context(), domain.QRCode{ID: i, URL: "u"},
					domain.Checkout{Token: fmt.Sprintf("tok-bench-%020d", i), OrderID: id}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// The payment path's writes as `yzpay serve` makes them: tradefetcher
	// batches (RecordObservations) and notifier batches (RecordAttempts)
	// of 4, as at 1000 payments/s, two of each kind in flight at once.
	// cpu-ns/op is the CPU per payment: one observation and one delivered
	// attempt.
	b.Run("PaymentPathParallel", func(b *testing.B) {
		s := setup(b)
		seed(b, s)
		const batch, writers = 4, 2
		var obsNext, attNext atomic.Int64
		defer cpuPerOp(b)()
		b.ResetTimer()
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				obs := make([]domain.Observation, 0, batch)
				for {
					obs = obs[:0]
					for range batch {
						i := obsNext.Add(1) - 1
						if i >= int64(b.N) {
							break
						}
						obs = append(obs, paidObs(i%orders+1, lifecycle[(i/orders)%int64(len(lifecycle))]))
					}
					if len(obs) == 0 {
						return
					}
					if _, err := s.RecordObservations(b.Context(), obs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			wg.Go(func() {
				as := make([]domain.Attempt, 0, batch)
				for {
					as = as[:0]
					for range batch {
						i := attNext.Add(1) - 1
						if i >= int64(b.N) {
							break
						}
						as = append(as, domain.Attempt{EventID: fmt.Sprintf("T%d:TRADE_SUCCESS", i), Endpoint: "https://shop.example/notify",
							OrderID: fmt.Sprintf("bench-%d", i%orders), Status: domain.StatusTradeSuccess, Event: []byte(`{"v":1}`),
							HTTPStatus: 200, Delivered: true, Excerpt: "success", Duration: 12 * time.Millisecond, At: time.Now()})
					}
					if len(as) == 0 {
						return
					}
					if _, err := s.RecordAttempts(b.Context(), as); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
	// What the notifier reads per batch before it posts: the batch's orders,
	// their notify_urls and deliveries (Store.OrderState), for batches of
	// 1 and 4 orders as at 1000/s. Every order has its checkout page, as the
	// gateway creates them; every other one a notify_url and every fourth a
	// delivery already (a redelivery), so that each query finds rows for
	// some orders and none for others.
	//
	// In "AfterCommit" another order's payment is committed before each read
	// (its CPU is left out), as in `yzpay serve`, where the writer commits
	// between any two reads: a reader connection's first read after a commit
	// finds the WAL changed, drops its page cache and reads its pages again.
	type readCase struct {
		size        int
		afterCommit bool
	}
	for _, c := range []readCase{{1, false}, {4, false}, {1, true}, {4, true}} {
		name := fmt.Sprintf("ReadOrderState%d", c.size)
		if c.afterCommit {
			name += "AfterCommit"
		}
		size := c.size
		b.Run(name, func(b *testing.B) {
			s := setup(b)
			seed(b, s)
			var prior []domain.Attempt
			for i := range orders {
				id := fmt.Sprintf("bench-%d", i)
				c := domain.Checkout{Token: fmt.Sprintf("tok-bench-%020d", i), OrderID: id}
				if i%2 == 0 {
					c.NotifyURL = "https://shop.example/notify/" + id
				}
				if _, err := s.BindCheckout(b.Context(), c); err != nil {
					b.Fatal(err)
				}
				if i%4 == 0 {
					prior = append(prior, domain.Attempt{EventID: fmt.Sprintf("T%d:TRADE_SUCCESS", i), Endpoint: "https://shop.example/notify",
						OrderID: id, Status: domain.StatusTradeSuccess, Event: []byte(`{"v":1}`), HTTPStatus: 500, Error: "HTTP 500",
						NextAttemptAt: time.Now().Add(time.Minute), At: time.Now()})
				}
			}
			if _, err := s.RecordAttempts(b.Context(), prior); err != nil {
				b.Fatal(err)
			}
			i := 0
			ids := make([]string, size)
			var left time.Duration // CPU of the commits, left out
			c0, ok0 := cputime.Self()
			for b.Loop() {
				if c.afterCommit {
					w0, _ := cputime.Self()
					ob := paidObs(int64(i%orders+1), domain.StatusTradeSuccess)
					if _, err := s.RecordObservations(b.Context(), []domain.Observation{ob}); err != nil {
						b.Fatal(err)
					}
					w1, _ := cputime.Self()
					left += w1 - w0
				}
				for j := range ids {
					ids[j] = fmt.Sprintf("bench-%d", i%orders)
					i++
				}
				if _, err := s.OrderState(b.Context(), ids); err != nil {
					b.Fatal(err)
				}
			}
			if c1, ok1 := cputime.Self(); ok0 && ok1 && b.N > 0 {
				b.ReportMetric(float64(c1-c0-left)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// --- history (the backends' tests read their own tables) ---

// HistoryRow is one row of the observations table, as far as the backends'
// own tests check it.
type HistoryRow struct {
	OrderID, Source, Status string
	Changed                 bool
	From                    string
}

// RecordHistory makes a known history on an empty store: observations of two
// orders in one batch (one of an unknown QR, which is not recorded), then an
// expiry. It returns the rows the observations table must then hold, in id
// order.
func RecordHistory(t *testing.T, s store.Store) []HistoryRow {
	t.Helper()
	create(t, s, "h1", 1)
	create(t, s, "h2", 2)
	observe(t, s,
		obs(1, domain.StatusWaitBuyerPay),
		paidObs(1, domain.StatusTradePaid),
		paidObs(99, domain.StatusTradePaid),
		paidObs(2, domain.StatusTradeSuccess),
		paidObs(1, domain.StatusTradePaid),
		paidObs(1, domain.StatusTradeSuccess),
	)
	create(t, s, "h3", 3)
	if _, err := s.CloseExpired(ctx(t), "h3", time.Now()); err != nil {
		t.Fatal(err)
	}
	return []HistoryRow{
		{"h1", "youzan", domain.StatusWaitBuyerPay, false, domain.StatusWaitBuyerPay},
		{"h1", "youzan", domain.StatusTradePaid, true, domain.StatusWaitBuyerPay},
		{"h2", "youzan", domain.StatusTradeSuccess, true, domain.StatusWaitBuyerPay},
		{"h1", "youzan", domain.StatusTradePaid, false, domain.StatusTradePaid},
		{"h1", "youzan", domain.StatusTradeSuccess, true, domain.StatusTradePaid},
		{"h3", "expiry", domain.StatusTradeClosed, true, domain.StatusWaitBuyerPay},
	}
}

// CheckHistory compares the observations table with what RecordHistory made.
func CheckHistory(t *testing.T, got, want []HistoryRow) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("observations table:\n got %v\nwant %v", got, want)
	}
}

// --- parked receipts ---

func receiptTIDs(rs []domain.ParkedReceipt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.TID
	}
	return out
}

func listReceipts(t testing.TB, s store.Store, state string) []domain.ParkedReceipt {
	t.Helper()
	rs, err := s.ListReceipts(ctx(t), store.ReceiptFilter{State: state})
	if err != nil {
		t.Fatalf("ListReceipts(%q): %v", state, err)
	}
	return rs
}

// A receipt parked for a trade Youzan does not know is kept with its body,
// tried again when due, given up as dead, listed, reopened by an operator,
// and forgotten once resolved.
func testParkedReceipts(t *testing.T, s store.Store) {
	t0 := us(time.Now().Add(-time.Hour))
	body := []byte(`{"type":"trade_TradePaid","id":"E20260101000000000000001"}`)
	park := func(tid string, at time.Time, b []byte, status string) {
		t.Helper()
		err := s.ParkReceipts(ctx(t), []domain.ParkedReceipt{{
			TID: tid, Type: "trade_TradePaid", Status: status, Body: b, ReceivedAt: at.Add(-time.Millisecond),
			LastError: "youzan youzan.trade.get: not_found (code 5000): trade not found",
			LastTryAt: at, NextTryAt: at.Add(time.Second),
		}})
		if err != nil {
			t.Fatalf("ParkReceipts(%s): %v", tid, err)
		}
	}
	park("E20260101000000000000001", t0, body, "TRADE_PAID")
	park("E20260101000000000000002", t0.Add(time.Minute), []byte(`{}`), "")

	rs := listReceipts(t, s, domain.ReceiptParked)
	if got := receiptTIDs(rs); !slices.Equal(got, []string{"E20260101000000000000001", "E20260101000000000000002"}) {
		t.Fatalf("parked receipts = %v, want both, oldest first", got)
	}
	r := rs[0]
	if r.Type != "trade_TradePaid" || r.Status != "TRADE_PAID" || string(r.Body) != string(body) ||
		r.State != domain.ReceiptParked || r.Attempts != 1 || !r.FirstSeen.Equal(t0) || !r.LastTryAt.Equal(t0) ||
		!r.NextTryAt.Equal(t0.Add(time.Second)) || !r.ReceivedAt.Equal(t0.Add(-time.Millisecond)) ||
		!r.DeadAt.IsZero() || !strings.Contains(r.LastError, "trade not found") {
		t.Fatalf("parked receipt read back as %+v", r)
	}
	checkUTC(t, "parked receipt", r.FirstSeen, r.LastTryAt, r.NextTryAt, r.ReceivedAt)
	if got := listReceipts(t, s, domain.ReceiptDead); len(got) != 0 {
		t.Fatalf("dead receipts before any give-up: %v", receiptTIDs(got))
	}

	// A re-push of the same trade keeps the first sighting and the schedule
	// but counts an attempt and keeps the latest body.
	park("E20260101000000000000001", t0.Add(30*time.Second), []byte(`{"v":2}`), "TRADE_SUCCESS")
	r = listReceipts(t, s, "")[0]
	if r.Attempts != 2 || !r.FirstSeen.Equal(t0) || !r.NextTryAt.Equal(t0.Add(time.Second)) ||
		!r.LastTryAt.Equal(t0.Add(30*time.Second)) || string(r.Body) != `{"v":2}` || r.Status != "TRADE_SUCCESS" {
		t.Fatalf("after a re-push: %+v", r)
	}

	// Only what is due is handed out.
	due, err := s.DueReceipts(ctx(t), t0.Add(2*time.Second), time.Minute, 10)
	if err != nil {
		t.Fatalf("DueReceipts: %v", err)
	}
	if got := receiptTIDs(due); !slices.Equal(got, []string{"E20260101000000000000001"}) {
		t.Fatalf("due = %v, want only the first", got)
	}

	// Not found again: retried later, then given up.
	r, err = s.RecordReceiptTry(ctx(t), "E20260101000000000000001", domain.ReceiptTry{At: t0.Add(3 * time.Second),
		Error: "still not found", NextTryAt: t0.Add(5 * time.Second)})
	if err != nil || r.Attempts != 3 || r.State != domain.ReceiptParked || !r.NextTryAt.Equal(t0.Add(5*time.Second)) ||
		r.LastError != "still not found" {
		t.Fatalf("RecordReceiptTry = %+v, %v", r, err)
	}
	deadAt := t0.Add(6 * time.Second)
	r, err = s.RecordReceiptTry(ctx(t), "E20260101000000000000001", domain.ReceiptTry{At: deadAt, Error: "gone", Dead: true})
	if err != nil || r.Attempts != 4 || r.State != domain.ReceiptDead || !r.DeadAt.Equal(deadAt) || !r.NextTryAt.IsZero() {
		t.Fatalf("RecordReceiptTry(dead) = %+v, %v", r, err)
	}
	if got := receiptTIDs(listReceipts(t, s, domain.ReceiptDead)); !slices.Equal(got, []string{"E20260101000000000000001"}) {
		t.Fatalf("dead receipts = %v", got)
	}
	// A dead receipt is never handed out, and a re-push does not revive it.
	park("E20260101000000000000001", t0.Add(time.Hour), body, "TRADE_PAID")
	due, err = s.DueReceipts(ctx(t), t0.Add(48*time.Hour), time.Minute, 10)
	if err != nil || slices.Contains(receiptTIDs(due), "E20260101000000000000001") {
		t.Fatalf("DueReceipts after give-up = %v, %v; the dead receipt must not be retried", receiptTIDs(due), err)
	}
	if r := listReceipts(t, s, domain.ReceiptDead); len(r) != 1 || r[0].Attempts != 5 {
		t.Fatalf("dead receipt after a re-push: %+v", r)
	}

	// An operator's replay makes it due once more.
	replayAt := us(time.Now())
	r, err = s.ReopenReceipt(ctx(t), "E20260101000000000000001", replayAt)
	if err != nil || r.State != domain.ReceiptParked || !r.NextTryAt.Equal(replayAt) || !r.DeadAt.IsZero() || !r.FirstSeen.Equal(t0) {
		t.Fatalf("ReopenReceipt = %+v, %v", r, err)
	}
	if _, err := s.ReopenReceipt(ctx(t), "E29999999999999999999999", replayAt); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("ReopenReceipt(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.RecordReceiptTry(ctx(t), "E29999999999999999999999", domain.ReceiptTry{Dead: true}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("RecordReceiptTry(unknown) = %v, want ErrNotFound", err)
	}

	// A receipt parked again after it was read (attempts moved on) is not
	// resolved by the stale reader; resolved receipts are gone; resolving
	// twice is harmless.
	if err := s.ResolveReceipt(ctx(t), "E20260101000000000000001", r.Attempts-1); err != nil {
		t.Fatalf("ResolveReceipt(stale): %v", err)
	}
	if got := listReceipts(t, s, domain.ReceiptParked); !slices.Contains(receiptTIDs(got), "E20260101000000000000001") {
		t.Fatalf("a stale ResolveReceipt removed a receipt parked again since: %v", receiptTIDs(got))
	}
	for range 2 {
		if err := s.ResolveReceipt(ctx(t), "E20260101000000000000001", r.Attempts); err != nil {
			t.Fatalf("ResolveReceipt: %v", err)
		}
	}
	if got := receiptTIDs(listReceipts(t, s, "")); !slices.Equal(got, []string{"E20260101000000000000002"}) {
		t.Fatalf("after resolve: %v", got)
	}
	if _, err := s.ListReceipts(ctx(t), store.ReceiptFilter{State: "bogus"}); err == nil {
		t.Fatal("ListReceipts accepted an unknown state")
	}
}

// Concurrent retriers (replicas) never take the same due receipt twice
// within a lease, and a batch of parks is one write.
func testParkedReceiptsLease(t *testing.T, s store.Store) {
	now := us(time.Now())
	var batch []domain.ParkedReceipt
	for i := range 300 {
		batch = append(batch, domain.ParkedReceipt{TID: fmt.Sprintf("E2026010100000000%06d", i), Type: "TRADE_ORDER_STATE",
			Body: []byte(`{}`), LastTryAt: now.Add(-time.Minute), NextTryAt: now.Add(-time.Second)})
	}
	if err := s.ParkReceipts(ctx(t), batch); err != nil {
		t.Fatalf("ParkReceipts: %v", err)
	}
	var (
		mu    sync.Mutex
		seen  = map[string]int{}
		wg    sync.WaitGroup
		errCh = make(chan error, 8)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, err := s.DueReceipts(ctx(t), now, time.Hour, 25)
				if err != nil {
					errCh <- err
					return
				}
				if len(due) == 0 {
					return
				}
				mu.Lock()
				for _, r := range due {
					seen[r.TID]++
					if !r.NextTryAt.Equal(now.Add(time.Hour)) {
						errCh <- fmt.Errorf("leased receipt %s has NextTryAt %v, want now+lease", r.TID, r.NextTryAt)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Fatal(err)
	}
	if len(seen) != 300 {
		t.Fatalf("retriers took %d distinct receipts, want 300", len(seen))
	}
	for tid, n := range seen {
		if n != 1 {
			t.Fatalf("receipt %s handed out %d times within one lease", tid, n)
		}
	}
	if due, err := s.DueReceipts(ctx(t), now.Add(time.Hour), time.Hour, 1000); err != nil || len(due) != 300 {
		t.Fatalf("after the lease ran out: %d due, %v; want all 300", len(due), err)
	}
}
