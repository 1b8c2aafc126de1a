package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps one *sql.Stmt per query text on one pool. SQLite parsing
// a statement costs more than running most of ours (issue 16,
// docs/performance.md "Hot path"), so every fixed query of a hot path is
// prepared once and reused. Only constant query texts may go in: the cache
// never evicts, so a query built from its arguments (an IN list) would grow
// it without bound.
//
// A *sql.Stmt is safe for concurrent use: database/sql prepares it again on
// each connection of the pool that runs it, once, and remembers that. On the
// writer pool (one connection) that is one preparation for the store's life;
// on the reader pool at most one per reader.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

// get returns query prepared on the cache's pool, preparing it on first use.
//
// On the writer it must be called outside inTx: that pool has one
// connection, which a (group) transaction holds, so preparing would wait
// for it forever. Inside the transaction, tx.StmtContext then reuses the statement
// already prepared on that connection (see inTxWith).
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st := c.m[query]
	c.mu.Unlock()
	if st != nil {
		return st, nil
	}
	// Prepared without the lock: a slow first preparation must not hold up
	// the users of other statements. Two first callers may both prepare;
	// one copy is kept.
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[query]; old != nil {
		_ = st.Close() // another caller prepared it meanwhile; the copy is not needed
		return old, nil
	}
	c.m[query] = st
	return st, nil
}

// close closes every statement; the cache must not be used afterwards.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// preparedAll returns each query prepared on the writer (see stmtCache.get).
func (s *Store) preparedAll(ctx context.Context, queries ...string) ([]*sql.Stmt, error) {
	out := make([]*sql.Stmt, len(queries))
	for i, q := range queries {
		st, err := s.ws.get(ctx, q)
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// inTxWith runs fn in a write transaction with queries prepared once per
// store and bound to the transaction, in the order given. The transaction is
// the same one inTx would run: binding a prepared statement changes only
// that SQLite does not parse the text again.
func (s *Store) inTxWith(ctx context.Context, queries []string, fn func(ctx context.Context, tx *sql.Tx, st []*sql.Stmt) error) error {
	ps, err := s.preparedAll(ctx, queries...)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for i, p := range ps {
			ps[i] = tx.StmtContext(ctx, p)
		}
		return fn(ctx, tx, ps)
	})
}

// readRow runs a fixed query on the reader pool through its prepared
// statement.
func (s *Store) readRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// inListCached bounds the IN (...) lists whose statements the reader cache
// keeps. The notifier's micro-batches (OrderState) read a few orders at a time, so the
// same few texts come back all the time (keeping them prepared halved the
// CPU of the batch's reads; docs/performance.md "Hot path"); longer lists are rare and
// parsed per call, which keeps the cache at most this many texts per query.
const inListCached = 32

// queryIn runs a query with an IN list of n marks on the reader pool,
// through a prepared statement when n is small (see inListCached).
func (s *Store) queryIn(ctx context.Context, query string, n int, args ...any) (*sql.Rows, error) {
	if n > inListCached {
		return s.r.QueryContext(ctx, query, args...)
	}
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}
