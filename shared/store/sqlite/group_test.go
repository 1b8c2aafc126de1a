package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// groupStore opens a migrated store with a table kv for the tests' writes,
// and reports each write queued on the channel it returns.
func groupStore(t *testing.T) (*Store, chan struct{}) {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "yzpay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	err = s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
			INSERT INTO kv VALUES ('n', 0)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	enq := make(chan struct{}, 1000)
	s.g.mu.Lock()
	s.g.enqueued = func() { enq <- struct{}{} }
	s.g.mu.Unlock()
	return s, enq
}

// hold starts a write that keeps the writer busy until the returned func
// is called, so that the writes queued meanwhile form the next group. The
// func waits for the held write's answer.
func hold(t *testing.T, s *Store, enq chan struct{}) (release func()) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.inTx(context.Background(), func(context.Context, *sql.Tx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	<-enq
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("held write: %v", err)
		}
	}
}

// inOneGroup queues fns in their order behind the write that release ends,
// so that they form the next group, releases it, and returns each fn's
// answer.
func inOneGroup(t *testing.T, s *Store, enq chan struct{}, release func(), fns []func(ctx context.Context, tx *sql.Tx) error) []error {
	t.Helper()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = s.inTx(t.Context(), fn) })
		waitQueued(enq, 1) // in this order
	}
	release()
	wg.Wait()
	return errs
}

// waitQueued waits until n more writes are queued.
func waitQueued(enq chan struct{}, n int) {
	for range n {
		<-enq
	}
}

// bump counts one more write in kv's row n and stores what it saw as key k:
// each write of a group must see those before it.
func bump(ctx context.Context, tx *sql.Tx, k string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = v + 1 WHERE k = 'n'`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES (?, (SELECT v FROM kv WHERE k = 'n'))`, k)
	return err
}

// kv reads k's committed value through the readers; ok is false if absent.
func kv(t *testing.T, s *Store, k string) (v int, ok bool) {
	t.Helper()
	err := s.r.QueryRowContext(t.Context(), `SELECT v FROM kv WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

// Writes queued together share one transaction; one that fails is undone
// alone and gets its error, the others are committed, each having seen the
// ones before it.
func TestGroupOneFails(t *testing.T) {
	s, enq := groupStore(t)
	release := hold(t, s, enq)
	const n, failing = 10, 4
	boom := errors.New("boom")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
				if err := bump(ctx, tx, fmt.Sprint("w", i)); err != nil {
					return err
				}
				if i == failing {
					return boom
				}
				return nil
			})
		})
	}
	waitQueued(enq, n)
	groups := s.g.groups.Load()
	release()
	wg.Wait()
	if got := s.g.groups.Load() - groups; got != 2 {
		t.Errorf("%d transactions for the held write and %d queued ones, want 2", got, n)
	}
	seen := map[int]bool{}
	for i, err := range errs {
		v, ok := kv(t, s, fmt.Sprint("w", i))
		if i == failing {
			if !errors.Is(err, boom) || ok {
				t.Errorf("failing write: err %v, its row present %v; want boom and no row", err, ok)
			}
			continue
		}
		if err != nil || !ok {
			t.Errorf("write %d: err %v, row present %v", i, err, ok)
		}
		seen[v] = true
	}
	for v := 1; v < n; v++ {
		if !seen[v] {
			t.Errorf("no write saw count %d (saw %v): not serial", v, seen)
		}
	}
	if v, _ := kv(t, s, "n"); v != n-1 {
		t.Errorf("count %d, want %d", v, n-1)
	}
}

// A group holds at most maxGroup writes.
func TestGroupBounded(t *testing.T) {
	s, enq := groupStore(t)
	release := hold(t, s, enq)
	const n = maxGroup + 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
				return bump(ctx, tx, fmt.Sprint("w", i))
			}); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(enq, n)
	groups := s.g.groups.Load()
	release()
	wg.Wait()
	if got := s.g.groups.Load() - groups; got != 3 {
		t.Errorf("%d transactions for the held write and %d queued ones, want 3", got, n)
	}
	if v, _ := kv(t, s, "n"); v != n {
		t.Errorf("count %d, want %d", v, n)
	}
}

// A write whose ctx ends while it waits leaves at once and never runs; one
// that ran before its ctx ended is answered by the commit, and only once
// its writes are committed.
func TestGroupCancel(t *testing.T) {
	s, enq := groupStore(t)
	release := hold(t, s, enq)

	// Queued behind the held write, then cancelled: returns while the
	// writer is still held, so without waiting for any transaction.
	ctx, cancel := context.WithCancel(t.Context())
	var ran atomic.Bool
	left := make(chan error, 1)
	go func() {
		left <- s.inTx(ctx, func(context.Context, *sql.Tx) error { ran.Store(true); return nil })
	}()
	waitQueued(enq, 1)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while queued: %v, want context.Canceled", err)
	}

	// d runs, then its ctx ends while e, later in the same group, still
	// runs: d must wait for the commit and succeed.
	dctx, dcancel := context.WithCancel(t.Context())
	defer dcancel()
	dDone := make(chan error, 1)
	var dVisible bool
	go func() {
		err := s.inTx(dctx, func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "d") })
		_, dVisible = kv(t, s, "d") // answered only after the commit: visible to readers
		dDone <- err
	}()
	waitQueued(enq, 1)
	eRunning, eGo := make(chan struct{}), make(chan struct{})
	eDone := make(chan error, 1)
	go func() {
		eDone <- s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			close(eRunning)
			<-eGo
			return bump(ctx, tx, "e")
		})
	}()
	waitQueued(enq, 1)
	release()
	<-eRunning // d, queued before e, has run
	dcancel()
	close(eGo)
	if err := <-dDone; err != nil || !dVisible {
		t.Errorf("write cancelled after it ran: %v, visible when answered %v; want nil, true", err, dVisible)
	}
	if err := <-eDone; err != nil {
		t.Error(err)
	}
	if ran.Load() {
		t.Error("a write cancelled while queued ran")
	}
}

// A commit that fails fails every write of the group: none of them is kept.
// A foreign key checked at commit (PRAGMA defer_foreign_keys) makes one.
func TestGroupCommitFails(t *testing.T) {
	s, enq := groupStore(t)
	release := hold(t, s, enq)
	fns := []func(ctx context.Context, tx *sql.Tx) error{
		func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "a") },
		func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO checkouts (token, order_id, return_url, notify_url, created_at)
				VALUES ('tok-group-commit-test-000', 'no such order', '', '', 0)`)
			return err
		},
		func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "c") },
	}
	errs := inOneGroup(t, s, enq, release, fns)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "commit") || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("write %d: %v, want the commit's error", i, err)
		}
	}
	lostThenUsable(t, s, "the commit failed")
}

// lostThenUsable checks that the writes "a" and "c" of a group that was lost
// left nothing, and that the writer works again: no transaction was left
// open on its connection.
func lostThenUsable(t *testing.T, s *Store, why string) {
	t.Helper()
	for _, k := range []string{"a", "c"} {
		if _, ok := kv(t, s, k); ok {
			t.Errorf("%s kept although %s", k, why)
		}
	}
	if err := s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "after") }); err != nil {
		t.Fatal(err)
	}
	if v, ok := kv(t, s, "after"); !ok || v != 1 {
		t.Errorf("write after %s: %d, %v", why, v, ok)
	}
}

// A panic in one write is raised in its caller; the group goes on.
func TestGroupPanic(t *testing.T) {
	s, enq := groupStore(t)
	release := hold(t, s, enq)
	var wg sync.WaitGroup
	var before, after error
	var recovered any
	wg.Go(func() {
		before = s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "a") })
	})
	waitQueued(enq, 1)
	wg.Go(func() {
		defer func() { recovered = recover() }()
		_ = s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			if err := bump(ctx, tx, "p"); err != nil {
				return err
			}
			panic("in a write")
		})
	})
	waitQueued(enq, 1)
	wg.Go(func() {
		after = s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "c") })
	})
	waitQueued(enq, 1)
	release()
	wg.Wait()
	if recovered != "in a write" || before != nil || after != nil {
		t.Errorf("recovered %v, others %v, %v", recovered, before, after)
	}
	_, a := kv(t, s, "a")
	_, p := kv(t, s, "p")
	_, c := kv(t, s, "c")
	if !a || p || !c {
		t.Errorf("rows a, p, c present: %v %v %v; want true false true", a, p, c)
	}
}

// Close answers the writes already queued, refuses later ones, and leaves
// no goroutine behind (there is none but the callers').
func TestGroupClose(t *testing.T) {
	s, enq := groupStore(t)
	release := hold(t, s, enq)
	queued := make(chan error, 1)
	go func() {
		queued <- s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "q") })
	}()
	waitQueued(enq, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for {
		s.g.mu.Lock()
		c := s.g.closed
		s.g.mu.Unlock()
		if c {
			break
		}
		runtime.Gosched()
	}
	if err := s.inTx(t.Context(), func(context.Context, *sql.Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Errorf("write after Close: %v, want errClosed", err)
	}
	release()
	if err := <-queued; err != nil {
		t.Errorf("write queued before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// Writes cancelled at any moment, many at once: each caller is answered,
// succeeds exactly when its write is kept, and fails only with its ctx's
// error; the writer ends idle.
func TestGroupCancelStress(t *testing.T) {
	s, _ := groupStore(t)
	s.g.mu.Lock()
	s.g.enqueued = nil
	s.g.mu.Unlock()
	const n = 400
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx, cancel := context.WithCancel(t.Context())
		wg.Go(func() {
			errs[i] = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, fmt.Sprint("w", i)) })
		})
		if i%3 != 0 {
			wg.Go(func() {
				for range i % 7 {
					runtime.Gosched()
				}
				cancel()
			})
		} else {
			defer cancel()
		}
	}
	wg.Wait()
	kept := 0
	for i, err := range errs {
		_, ok := kv(t, s, fmt.Sprint("w", i))
		if (err == nil) != ok || (err != nil && !errors.Is(err, context.Canceled)) {
			t.Errorf("write %d: %v, kept %v", i, err, ok)
		}
		if ok {
			kept++
		}
	}
	if v, _ := kv(t, s, "n"); v != kept {
		t.Errorf("count %d, %d writes kept", v, kept)
	}
	s.g.mu.Lock()
	idle := !s.g.leading && len(s.g.queue) == 0
	s.g.mu.Unlock()
	if !idle {
		t.Error("writer not idle after every write was answered")
	}
	t.Logf("%d of %d writes kept", kept, n)
}

// A write that ends the transaction itself (as SQLite does after an I/O
// error) loses the group: those before it lose their writes and are told,
// those after it do not run, and the writer is usable again.
func TestGroupTransactionLost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fails   error
		wantErr string
	}{
		{"then succeeds", nil, "release savepoint"},
		{"then fails", errors.New("boom"), "transaction lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, enq := groupStore(t)
			release := hold(t, s, enq)
			fns := []func(ctx context.Context, tx *sql.Tx) error{
				func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "a") },
				func(ctx context.Context, tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
						return err
					}
					return tc.fails
				},
				func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "c") },
			}
			errs := inOneGroup(t, s, enq, release, fns)
			for i, err := range errs {
				if i == 1 && tc.fails != nil {
					if !errors.Is(err, tc.fails) {
						t.Errorf("the write that ended the transaction: %v, want its own error", err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("write %d: %v, want %q", i, err, tc.wantErr)
				}
			}
			lostThenUsable(t, s, "its transaction was lost")
		})
	}
}

// On one processor (yzpay pinned to a core, or GOMAXPROCS=1), the writers
// waiting to run are only runnable, not queued, while the leader works: the
// leader lets them queue before it takes its group, so they still share
// commits.
func TestGroupOnOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, _ := groupStore(t)
	s.g.mu.Lock()
	s.g.enqueued = nil
	s.g.mu.Unlock()
	const writers, each = 32, 10
	before := s.g.groups.Load()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errs <- s.inTx(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
					return bump(ctx, tx, fmt.Sprintf("w%d-%d", w, i))
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if groups := s.g.groups.Load() - before; groups*2 > writers*each {
		t.Fatalf("%d writes took %d transactions: on one processor the writers did not share commits", writers*each, groups)
	}
}

// Another process holding the write lock past busy_timeout (a backup, the
// sqlite3 shell) makes BEGIN fail: every write of the group gets the error
// and none runs; once the lock is gone the writer works again.
func TestGroupBeginFails(t *testing.T) {
	s, _ := groupStore(t)
	ctx := t.Context()
	var path string
	if err := s.r.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		t.Fatal(err)
	}
	// The writer pool's one connection waits 50 ms for the lock, not 10 s.
	if _, err := s.w.ExecContext(ctx, `PRAGMA busy_timeout = 50`); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	locker, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	if _, err := locker.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}

	const n = 5
	var ran atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				ran.Add(1)
				return bump(ctx, tx, fmt.Sprint("w", i))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "begin:") {
			t.Errorf("write %d while another process holds the lock: %v, want a begin error", i, err)
		}
	}
	if got := ran.Load(); got != 0 {
		t.Errorf("%d writes ran without a transaction", got)
	}

	if _, err := locker.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return bump(ctx, tx, "after") }); err != nil {
		t.Fatalf("write after the lock was released: %v", err)
	}
	if v, _ := kv(t, s, "n"); v != 1 {
		t.Errorf("count %d, want 1 (only the write after the lock)", v)
	}
}
