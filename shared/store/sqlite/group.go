package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Group commit.
//
// Every write runs on the one writer connection, so concurrent writers
// queue anyway. A commit (WAL frames written and checksummed, the WAL index
// updated) and a BEGIN IMMEDIATE (file locks) cost about as much CPU as a
// small transaction's statements (docs/performance.md, "Hot path"). So the
// writes queued while one transaction runs share the next one: each runs
// inside its own SAVEPOINT, in queue order, and one COMMIT makes them all
// durable. Running them one after another on one connection keeps the
// serial semantics each had in its own transaction: each sees the effects
// of those before it, and no other writer comes in between.
//
// There is no writer goroutine. The first caller to find the writer idle
// leads: it runs the group (its own request first) in its own goroutine,
// answers the others, and hands the lead to the oldest request still
// queued. A caller alone pays no handoff and waits for nobody.

// maxGroup bounds the requests in one transaction, so that one commit does
// not grow without limit and the first caller of a long queue is not held
// up by all the rest.
const maxGroup = 64

// errClosed answers writes that arrive after Close.
var errClosed = errors.New("store closed")

type reqState uint8

const (
	reqQueued  reqState = iota // waiting; may still withdraw
	reqLeading                 // told to lead the next group
	reqTaken                   // in a group: will be answered after its commit
)

type writeReq struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *sql.Tx) error
	// done receives one value: the lead, or the answer in err/panicked.
	done  chan struct{}
	state reqState // guarded by groupWriter.mu

	err      error
	panicked bool
	panicVal any
}

type groupWriter struct {
	db *sql.DB
	// Prepared once on the writer: these run twice per request of a group.
	savepoint, release, rollbackTo *sql.Stmt

	mu      sync.Mutex
	idle    *sync.Cond // signalled when leading turns false
	queue   []*writeReq
	leading bool // some request leads or is told to: then queue may be non-empty
	closed  bool

	// Transactions committed or rolled back, for tests that check grouping.
	groups atomic.Int64
	// Called after each enqueue when set (tests only).
	enqueued func()
}

// newGroupWriter writes through db, the writer pool, whose statement cache
// stmts keeps (and closes) the savepoint statements.
func newGroupWriter(ctx context.Context, db *sql.DB, stmts *stmtCache) (*groupWriter, error) {
	g := &groupWriter{db: db}
	g.idle = sync.NewCond(&g.mu)
	// One savepoint name is enough: the savepoints are never nested.
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{{&g.savepoint, "SAVEPOINT w"}, {&g.release, "RELEASE w"}, {&g.rollbackTo, "ROLLBACK TO w"}} {
		st, err := stmts.get(ctx, p.q)
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", p.q, err)
		}
		*p.st = st
	}
	return g, nil
}

// close refuses new writes and waits for the queued ones to be answered. No
// goroutine of the writer outlives it: there are none but the callers'.
func (g *groupWriter) close() {
	g.mu.Lock()
	g.closed = true
	for g.leading {
		g.idle.Wait()
	}
	g.mu.Unlock()
}

// do runs fn in a write transaction, perhaps shared with other callers',
// and returns once that transaction committed (nil), or with fn's error
// (fn's writes undone), or the commit's. fn's statements run with ctx's
// values but without its cancellation: once fn has started, it runs to the
// end and is answered by the commit. A SQLite statement interrupted by a
// cancelled context can roll back the whole transaction, the other
// callers' writes with it. If ctx ends before fn has started, fn does not
// run and do returns ctx's error.
func (g *groupWriter) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{}, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errClosed
	}
	g.queue = append(g.queue, r)
	lead := !g.leading
	if lead {
		g.leading, r.state = true, reqLeading
	}
	hook := g.enqueued
	g.mu.Unlock()
	if hook != nil {
		hook()
	}
	if !lead {
		select {
		case <-r.done:
		case <-ctx.Done():
			g.mu.Lock()
			if r.state == reqQueued {
				g.remove(r)
				g.mu.Unlock()
				return ctx.Err()
			}
			g.mu.Unlock()
			// Taken: it runs or ran, and the commit decides. Or told to
			// lead: it leads this one group (its own write skipped), as a
			// leader whose ctx ends while it leads goes on for the others.
			<-r.done
		}
		// The state is read after the receive: whoever sent set it first.
		if r.state == reqLeading {
			lead = true
		}
	}
	if lead {
		g.lead(r)
	}
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// remove takes r out of the queue; g.mu is held.
func (g *groupWriter) remove(r *writeReq) {
	if i := slices.Index(g.queue, r); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
	}
}

// handOn gives the lead to the oldest queued request, or marks the writer
// idle; g.mu is held.
func (g *groupWriter) handOn() {
	if len(g.queue) == 0 {
		g.leading = false
		g.idle.Broadcast()
		return
	}
	next := g.queue[0]
	next.state = reqLeading
	next.done <- struct{}{}
}

// lead runs one group: the leader's request me, first in the queue, and
// those queued behind it up to maxGroup. Every request taken is answered
// (me through its own fields) before lead returns, and the lead is handed
// on.
func (g *groupWriter) lead(me *writeReq) {
	// BEGIN before taking the group: the requests that come while BEGIN
	// waits (for a lock another process holds) join it, and those whose
	// ctx ends meanwhile can still leave. The transaction's context is not
	// a caller's: database/sql rolls a transaction back when its context
	// ends, and this one is everybody's.
	//
	// First the leader yields once. On one processor (yzpay pinned to a
	// core, GOMAXPROCS=1) the other writers are runnable but cannot queue
	// while the leader runs: BEGIN, the statements and COMMIT never block
	// long enough to give up the processor. After the yield they have
	// queued and share this commit; on an idle store it returns at once.
	// Order creation measured 0.45–0.53 → 0.29–0.31 ms of CPU per order
	// on one core (docs/performance.md, "Hot path").
	runtime.Gosched()
	tx, beginErr := g.db.BeginTx(context.Background(), nil)

	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	group := make([]*writeReq, n)
	copy(group, g.queue)
	clear(g.queue[:n])
	g.queue = g.queue[n:]
	for _, r := range group {
		r.state = reqTaken
	}
	g.mu.Unlock()

	if beginErr != nil {
		for _, r := range group {
			r.err = fmt.Errorf("begin: %w", beginErr)
		}
	} else {
		g.run(tx, group)
		g.groups.Add(1)
	}

	g.mu.Lock()
	for _, r := range group {
		if r != me {
			r.done <- struct{}{}
		}
	}
	g.handOn()
	g.mu.Unlock()
}

// run runs group's requests in tx and ends tx, setting each request's
// answer.
func (g *groupWriter) run(tx *sql.Tx, group []*writeReq) {
	// Alone, a request needs no savepoint: its error rolls back the
	// transaction, as before group commit.
	single := len(group) == 1
	// Bound to tx once for the group, not once per use: each binding
	// allocates and is closed again at the end of tx.
	var savepoint, release, rollbackTo *sql.Stmt
	if !single {
		savepoint, release, rollbackTo = tx.Stmt(g.savepoint), tx.Stmt(g.release), tx.Stmt(g.rollbackTo)
	}
	// Those whose function ran. If the transaction is then lost, so is
	// what each of them saw, its own error included (an order that
	// conflicted with one created earlier in the group, say): each is
	// answered with the loss.
	ran := make([]*writeReq, 0, len(group))
	kept := 0 // of ran, those without error
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err // ended before its turn: does not run
			continue
		}
		if !single {
			if _, err := savepoint.Exec(); err != nil {
				g.abort(tx, ran, group[i:], nil, fmt.Errorf("group commit: savepoint: %w", err))
				return
			}
		}
		r.err = r.call(tx)
		ran = append(ran, r)
		if r.err == nil {
			kept++
			if !single {
				if _, err := release.Exec(); err != nil {
					g.abort(tx, ran, group[i+1:], nil, fmt.Errorf("group commit: release savepoint: %w", err))
					return
				}
			}
			continue
		}
		if single {
			_ = tx.Rollback() // r's error is the one to report
			return
		}
		// Undo r's writes alone. If that fails the transaction itself is
		// gone (SQLite rolls the whole transaction back after some errors:
		// I/O, disk full, out of memory), and the writes of those before r
		// with it.
		_, err := rollbackTo.Exec()
		if err == nil {
			_, err = release.Exec()
		}
		if err != nil {
			g.abort(tx, ran, group[i+1:], r, fmt.Errorf(
				"group commit: transaction lost after another write failed (%v): %w", r.err, err))
			return
		}
	}
	if kept == 0 {
		_ = tx.Rollback() // nothing to keep
		return
	}
	if err := tx.Commit(); err != nil {
		err = fmt.Errorf("commit: %w", err)
		for _, r := range ran {
			r.err = err
		}
	}
}

// abort rolls tx back after the group lost it: the requests of ran (but
// culprit, which keeps its own error) and of rest (not run yet) all get err.
func (g *groupWriter) abort(tx *sql.Tx, ran, rest []*writeReq, culprit *writeReq, err error) {
	_ = tx.Rollback() // err says why; the transaction may be gone already
	for _, r := range ran {
		if r != culprit {
			r.err = err
		}
	}
	for _, r := range rest {
		r.err = err
	}
}

// call runs r's function. A panic is caught so that the group goes on and
// is re-raised in r's caller, whose goroutine it belongs to.
func (r *writeReq) call(tx *sql.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			r.panicked, r.panicVal = true, v
			err = fmt.Errorf("write panicked: %v", v)
		}
	}()
	return r.fn(context.WithoutCancel(r.ctx), tx)
}
