package postgres_test

// BenchmarkBackendCPU reports the Postgres server's own CPU per row written
// (pg-µs/row: user+system time of the session's backend process, read from
// /proc, so only for a server on this machine) for batches of 1, 8 and 32,
// the figure the split setup's cpu-pg column adds up. Wall time per op is
// mostly commit fsyncs and other sessions on a shared server.

import (
	"fmt"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/cputime"
	"github.com/yzpay/yzpay/shared/domain"
)

func backendCPU(b *testing.B, pid int) time.Duration {
	d, err := cputime.Of(pid)
	if err != nil {
		b.Skipf("backend process not readable (server not on this machine?): %v", err)
	}
	return d
}

func BenchmarkBackendCPU(b *testing.B) {
	// One connection, so one backend does all the work.
	s := open(b, "pool_max_conns=1")
	defer s.Close()
	const orders = 512
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		if _, err := s.Reserve(b.Context(), domain.NewOrder{OrderID: id, Name: "n", Price: 990}, time.Minute); err != nil {
			b.Fatal(err)
		}
		if _, err := s.AttachQR(b.Context(), id, domain.QRCode{ID: int64(i + 1), URL: "u"}); err != nil {
			b.Fatal(err)
		}
	}
	var pid int
	if err := s.Pool().QueryRow(b.Context(), "select pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	backendCPU(b, pid)
	lifecycle := []string{domain.StatusWaitBuyerPay, domain.StatusTradePaid, domain.StatusWaitSellerSendGoods, domain.StatusTradeSuccess}
	i := 0
	for _, size := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("Observations%d", size), func(b *testing.B) {
			batch := make([]domain.Observation, size)
			c0 := backendCPU(b, pid)
			for b.Loop() {
				for j := range batch {
					batch[j] = domain.Observation{QRID: int64(i%orders + 1), TID: fmt.Sprintf("T%d", i%orders), Status: lifecycle[(i/orders)%len(lifecycle)],
						Payment: 990, BuyerID: "b", PayType: "W", PaidAt: time.Now()}
					i++
				}
				if _, err := s.RecordObservations(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((backendCPU(b, pid)-c0).Microseconds())/float64(b.N*size), "pg-µs/row")
		})
		b.Run(fmt.Sprintf("Attempts%d", size), func(b *testing.B) {
			batch := make([]domain.Attempt, size)
			c0 := backendCPU(b, pid)
			for b.Loop() {
				for j := range batch {
					batch[j] = domain.Attempt{EventID: fmt.Sprintf("T%d:TRADE_SUCCESS", i), Endpoint: "https://shop.example/notify",
						OrderID: fmt.Sprintf("o-%d", i), Status: domain.StatusTradeSuccess, Event: []byte(`{"v":1}`),
						HTTPStatus: 200, Delivered: true, Excerpt: "success", Duration: 12 * time.Millisecond, At: time.Now()}
					i++
				}
				if _, err := s.RecordAttempts(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((backendCPU(b, pid)-c0).Microseconds())/float64(b.N*size), "pg-µs/row")
		})
	}
}
