package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/yzpay/yzpay/shared/domain"
)

// pagesWritten is the writer connection's count of pages written to the
// WAL so far (each a 4 KiB frame): what a commit costs in I/O.
func pagesWritten(tb testing.TB, db *sql.DB) int {
	tb.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	var n int
	err = c.Raw(func(dc any) error {
		var err error
		n, _, err = dc.(msqlite.DBStatus).Status(msqlite.DBStatusCacheWrite, false)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkPaymentPages reports the pages each write of a payment dirties
// (pages/op): the tradefetcher's RecordObservations of the payment and the
// notifier's RecordAttempts of its delivery, one payment per call, over
// orders created as the gateway does.
func BenchmarkPaymentPages(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "yzpay.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	const orders = 20000
	for i := range orders {
		id := fmt.Sprintf("order-%08d", i)
		if _, err := s.Reserve(b.Context(), domain.NewOrder{OrderID: id, Name: "item", Price: 990}, time.Minute); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.AttachQRAndCheckout(b.Context(), domain.QRCode{ID: int64(i + 1), URL: "https://qr.example/x"},
			domain.Checkout{Token: fmt.Sprintf("tok-%030d", i), OrderID: id}); err != nil {
			b.Fatal(err)
		}
	}
	event := make([]byte, 700) // about a TRADE_SUCCESS event's JSON
	for i := range event {
		event[i] = 'x'
	}
	i := 0
	var obsPages, attPages int
	for b.Loop() {
		if i >= orders {
			b.Fatal("out of orders")
		}
		id := fmt.Sprintf("order-%08d", i)
		now := time.Now()
		p0 := pagesWritten(b, s.w)
		if _, err := s.RecordObservations(b.Context(), []domain.Observation{{QRID: int64(i + 1), TID: fmt.Sprintf("E2026%016d", i),
			Status: domain.StatusTradeSuccess, Payment: 990, BuyerID: "buyer", PayType: "WEIXIN", PaidAt: now, ObservedAt: now}}); err != nil {
			b.Fatal(err)
		}
		p1 := pagesWritten(b, s.w)
		if _, err := s.RecordAttempts(b.Context(), []domain.Attempt{{EventID: fmt.Sprintf("E2026%016d:TRADE_SUCCESS", i),
			Endpoint: "https://shop.example/notify", OrderID: id, Status: domain.StatusTradeSuccess, Event: event,
			HTTPStatus: 200, Delivered: true, Excerpt: "success", Duration: 3 * time.Millisecond, At: now}}); err != nil {
			b.Fatal(err)
		}
		p2 := pagesWritten(b, s.w)
		obsPages += p1 - p0
		attPages += p2 - p1
		i++
	}
	b.ReportMetric(float64(obsPages)/float64(i), "obs-pages/op")
	b.ReportMetric(float64(attPages)/float64(i), "attempt-pages/op")
}
