package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/store/sqlite"
	"github.com/yzpay/yzpay/shared/store/storetest"
)

// open returns a migrated store on a new file (in a directory Open must
// create); the caller closes it.
func open(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "data", "yzpay.db"))
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

// The file outlives the process: reopening and migrating again finds the
// data and changes nothing.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "yzpay.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := s.Reserve(t.Context(), domain.NewOrder{OrderID: "keep", Name: "n", Price: 5}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate on an up-to-date file: %v", err)
		}
	}
	o, err := s.OrderByID(t.Context(), "keep")
	if err != nil || o != r.Order {
		t.Errorf("after reopen: %+v, %v; want %+v", o, err, r.Order)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.IsDir() {
		t.Errorf("no WAL file next to the database: %v", err)
	}
}

func TestOpenRejectsDSN(t *testing.T) {
	for _, p := range []string{"", "file:x.db", filepath.Join(t.TempDir(), "x.db?mode=ro")} {
		if s, err := sqlite.Open(t.Context(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

// Every observation lands in the history, in order, with its effect.
func TestHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "yzpay.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := storetest.RecordHistory(t, s)
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT order_id, source, status, changed, from_status FROM observations ORDER BY id`)
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
