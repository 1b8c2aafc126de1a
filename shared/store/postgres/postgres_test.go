package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/store/postgres"
	"github.com/yzpay/yzpay/shared/store/postgres/postgrestest"
	"github.com/yzpay/yzpay/shared/store/storetest"
)

// open returns a migrated store on a fresh database; the caller closes it.
// params are added to the URL's query, e.g. "pool_max_conns=1".
func open(tb testing.TB, params ...string) *postgres.Store {
	tb.Helper()
	url := postgrestest.NewDatabase(tb)
	for _, p := range params {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + p
	}
	s, err := postgres.Open(tb.Context(), url)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	if err := s.Migrate(tb.Context()); err != nil {
		s.Close()
		tb.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b) })
}

func schemaVersion(t *testing.T, s *postgres.Store) int64 {
	t.Helper()
	var v int64
	if err := s.Pool().QueryRow(t.Context(), `SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil {
		t.Fatalf("schema version: %v", err)
	}
	return v
}

func TestMigrateTwice(t *testing.T) {
	s := open(t)
	defer s.Close()
	want := schemaVersion(t, s)
	if want < 1 {
		t.Fatalf("schema version %d after Migrate", want)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if got := schemaVersion(t, s); got != want {
		t.Errorf("schema version %d after second Migrate, want %d", got, want)
	}
}

// Replicas starting together all migrate; the advisory lock makes one do the
// work while the others wait and then find nothing to do.
func TestMigrateConcurrent(t *testing.T) {
	url := postgrestest.NewDatabase(t)
	const replicas = 4
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		s, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		stores[i] = s
	}
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	gate := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-gate
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	if _, err := stores[0].Reserve(t.Context(), domain.NewOrder{OrderID: "x", Name: "n", Price: 1}, time.Minute); err != nil {
		t.Errorf("Reserve after concurrent migration: %v", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if s, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		s.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
}

// Every observation lands in the history, in order, with its effect.
func TestHistory(t *testing.T) {
	s := open(t)
	defer s.Close()
	want := storetest.RecordHistory(t, s)
	rows, err := s.Pool().Query(t.Context(), `SELECT order_id, source, status, changed, from_status FROM observations ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []storetest.HistoryRow
	for rows.Next() {
		var r storetest.HistoryRow
		if err := rows.Scan(&r.OrderID, &r.Source, &r.Status, &r.Changed, &r.From); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckHistory(t, got, want)
}

// A batch whose write fails (here the order UPDATE breaks a CHECK after the
// history INSERT went through) leaves nothing behind, releases its row
// locks and returns its connection usable: with a pool of one connection
// the next batch would otherwise block or fail.
func TestRecordObservationsFailureRollsBack(t *testing.T) {
	s := open(t, "pool_max_conns=1")
	defer s.Close()
	for i, id := range []string{"a", "b"} {
		if _, err := s.Reserve(t.Context(), domain.NewOrder{OrderID: id, Name: "n", Price: 990}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AttachQR(t.Context(), id, domain.QRCode{ID: int64(i + 1), URL: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	paid := func(qr, payment int64) domain.Observation {
		return domain.Observation{QRID: qr, TID: "T" + strconv.FormatInt(qr, 10), Status: domain.StatusTradeSuccess,
			Payment: payment, BuyerID: "b", PayType: "W", PaidAt: time.Now()}
	}
	if _, err := s.RecordObservations(t.Context(), []domain.Observation{paid(1, 990), paid(2, -1)}); err == nil {
		t.Fatal("RecordObservations with a negative payment succeeded")
	}
	var n int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM observations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d observations kept from a failed batch", n)
	}
	if o, _ := s.OrderByID(t.Context(), "a"); o.Status != domain.StatusWaitBuyerPay {
		t.Errorf("order a is %s after a failed batch", o.Status)
	}
	ch, err := s.RecordObservations(t.Context(), []domain.Observation{paid(1, 990)})
	if err != nil || !ch[0].Changed || ch[0].Order.Status != domain.StatusTradeSuccess {
		t.Fatalf("next batch: %+v, %v", ch, err)
	}
}

// A batch whose first statement fails (here its row lock times out while
// another session holds the order) returns that error, changes nothing and
// leaves its one connection usable once the lock is free.
func TestRecordObservationsReadFailureRollsBack(t *testing.T) {
	s := open(t, "pool_max_conns=1", "lock_timeout=100")
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Reserve(ctx, domain.NewOrder{OrderID: "a", Name: "n", Price: 990}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AttachQR(ctx, "a", domain.QRCode{ID: 1, URL: "u"}); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.ConnectConfig(ctx, s.Pool().Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	holder, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT 1 FROM orders WHERE order_id = 'a' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	paid := domain.Observation{QRID: 1, TID: "T1", Status: domain.StatusTradeSuccess, Payment: 990, BuyerID: "b",
		PayType: "W", PaidAt: time.Now()}
	_, err = s.RecordObservations(ctx, []domain.Observation{paid})
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "55P03" {
		t.Fatalf("RecordObservations while the order is locked elsewhere: %v, want lock_not_available (55P03)", err)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.OrderByID(ctx, "a"); o.Status != domain.StatusWaitBuyerPay {
		t.Errorf("order a is %s after a failed batch", o.Status)
	}
	ch, err := s.RecordObservations(ctx, []domain.Observation{paid})
	if err != nil || !ch[0].Changed || ch[0].Order.Status != domain.StatusTradeSuccess {
		t.Fatalf("next batch: %+v, %v", ch, err)
	}
}
