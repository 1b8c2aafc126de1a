// Package sqlite is the embedded store.Store: one SQLite file through the
// pure-Go modernc.org/sqlite driver, so the single yzpay binary runs with
// nothing else installed. It is for one process; several replicas need
// the postgres store.
//
// All writes go through one connection, so they are serialized in the process
// and concurrent writers queue instead of failing with SQLITE_BUSY; those
// queued together share one transaction and its commit (group.go). Reads use
// a separate pool and, in WAL mode, never wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/yzpay/yzpay/migrations"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// Store is a store.Store on a SQLite file.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers

	// Fixed statements of the hot paths (order creation, payments,
	// lookups), each prepared once per pool; see stmtCache.
	ws, rs *stmtCache

	g *groupWriter // every write transaction goes through it
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and its parent
// directory. It does not migrate: call Migrate before use.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		// The driver reads parameters after '?' and URIs after "file:";
		// a plain path keeps the DSN built below unambiguous.
		return nil, fmt.Errorf("sqlite store: invalid database path %q", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: create directory: %w", err)
	}
	// busy_timeout still matters with one writer: another process (a backup,
	// the sqlite3 shell) may hold the lock for a moment.
	// synchronous(NORMAL) in WAL mode: a commit survives a crash of the
	// process (the kill -9 test proves it), not necessarily a power cut —
	// the same trade JetStream's file store makes (docs/performance.md).
	// _txlock=immediate: a transaction takes the write lock when it begins,
	// never upgrading from a read lock halfway (which can fail with BUSY).
	// temp_store(MEMORY): the savepoints of a group commit (group.go) copy
	// each page they change first into a sub-journal, a temporary file by
	// default: one write(2) per page, a tenth of the payment path's CPU.
	wdsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_txlock=immediate"
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer goes first: it creates the file and switches it to WAL,
	// which the readers rely on.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	ws := newStmtCache(w)
	g, err := newGroupWriter(ctx, w, ws)
	if err != nil {
		ws.close()
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	return &Store{w: w, r: r, ws: ws, rs: newStmtCache(r), g: g}, nil
}

// Migrate applies the pending migrations; it is idempotent. No lock is taken
// beyond SQLite's own: the file belongs to one process.
func (s *Store) Migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations.FS, "sqlite")
	if err != nil {
		return fmt.Errorf("sqlite store: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("sqlite store: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite store: migrate: %w", err)
	}
	return nil
}

// Ping checks that the file can be read and written.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite store: ping: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite store: ping: %w", err)
	}
	return nil
}

// Close waits for the writes already queued, then closes both connection
// pools. Writes after Close fail.
func (s *Store) Close() error {
	s.g.close()
	return errors.Join(s.ws.close(), s.rs.close(), s.r.Close(), s.w.Close())
}

// inTx runs fn in a write transaction on the writer connection, perhaps
// shared with other callers' (see groupWriter.do): fn's writes are undone if
// it fails, and committed before inTx returns nil. fn must use the ctx it is
// given, not the caller's: the caller's cancellation must not interrupt a
// statement of a shared transaction.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.g.do(ctx, fn)
}

const orderCols = `order_id, name, price, qr_id, qr_url, status, tid, payment,
	buyer_id, pay_type, paid_at, ever_paid, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanOrder(row scanner, extra ...any) (domain.Order, error) {
	var (
		o                domain.Order
		qrID, paidAt     sql.NullInt64
		tid              sql.NullString
		created, updated int64
	)
	dest := append([]any{&o.OrderID, &o.Name, &o.Price, &qrID, &o.QRURL, &o.Status, &tid,
		&o.Payment, &o.BuyerID, &o.PayType, &paidAt, &o.EverPaid, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return domain.Order{}, err
	}
	o.QRID = qrID.Int64
	o.TID = tid.String
	o.PaidAt = fromNull(paidAt)
	o.CreatedAt, o.UpdatedAt = fromMicro(created), fromMicro(updated)
	return o, nil
}

// Statements of order creation (Reserve, AttachQR, AttachQRAndCheckout).
const (
	orderByIDSQL     = `SELECT ` + orderCols + ` FROM orders WHERE order_id = ?`
	reserveInsertSQL = `INSERT INTO orders (order_id, name, price, status, claim_token, claim_until, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				RETURNING ` + orderCols
	reserveClaimSQL = `UPDATE orders SET claim_token = ?, claim_until = ?
			WHERE order_id = ? AND qr_id IS NULL AND (claim_until IS NULL OR claim_until < ?)`
	attachQRSQL = `UPDATE orders SET qr_id = ?, qr_url = ?, claim_token = NULL, claim_until = NULL, updated_at = ?
			WHERE order_id = ? AND qr_id IS NULL
			RETURNING ` + orderCols
)

// Reserve creates the order or finds it, and hands out the claim to create
// its QR code. See store.Reservation.
func (s *Store) Reserve(ctx context.Context, o domain.NewOrder, claimFor time.Duration) (store.Reservation, error) {
	if err := o.Validate(); err != nil {
		return store.Reservation{}, fmt.Errorf("sqlite store: %w", err)
	}
	var res store.Reservation
	// The same statements in the same transaction as before they were
	// prepared: the claim protocol rests on the transaction, not on how
	// its statements were parsed.
	err := s.inTxWith(ctx, []string{orderByIDSQL, reserveInsertSQL, reserveClaimSQL}, func(ctx context.Context, _ *sql.Tx, st []*sql.Stmt) error {
		sel, ins, claim := st[0], st[1], st[2]
		// Taken inside the transaction: writers are serialized, so claim
		// times are compared in the order the claims were made.
		now := now()
		until := toMicro(now.Add(claimFor))
		token := store.NewClaimToken()
		ord, err := scanOrder(sel.QueryRowContext(ctx, o.OrderID))
		if errors.Is(err, sql.ErrNoRows) {
			ord, err = scanOrder(ins.QueryRowContext(ctx,
				o.OrderID, o.Name, o.Price, domain.StatusWaitBuyerPay, token, until, toMicro(now), toMicro(now)))
			if err != nil {
				return err
			}
			res = store.Reservation{Order: ord, Claimed: true, ClaimToken: token}
			return nil
		}
		if err != nil {
			return err
		}
		if ord.Name != o.Name || ord.Price != o.Price {
			return fmt.Errorf("order %q: %w", o.OrderID, domain.ErrConflict)
		}
		if ord.QRID != 0 {
			res = store.Reservation{Order: ord}
			return nil
		}
		// Take the claim only if nobody holds a live one; a dead claim's
		// holder crashed or gave up.
		r, err := claim.ExecContext(ctx, token, until, o.OrderID, toMicro(now))
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		res = store.Reservation{Order: ord, Claimed: n == 1}
		if res.Claimed {
			res.ClaimToken = token
		}
		return nil
	})
	if err != nil {
		return store.Reservation{}, fmt.Errorf("sqlite store: reserve %q: %w", o.OrderID, err)
	}
	return res, nil
}

// ReleaseClaim ends the caller's claim early; see store.Store.
func (s *Store) ReleaseClaim(ctx context.Context, orderID, token string) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			UPDATE orders SET claim_token = NULL, claim_until = NULL
			WHERE order_id = ? AND qr_id IS NULL AND claim_token = ?`, orderID, token)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: release claim on %q: %w", orderID, err)
	}
	return nil
}

// AttachQR binds qr to the order unless it already has a QR, in which case
// the order is returned with the QR that won.
func (s *Store) AttachQR(ctx context.Context, orderID string, qr domain.QRCode) (domain.Order, error) {
	if qr.ID <= 0 {
		return domain.Order{}, fmt.Errorf("sqlite store: attach QR to %q: invalid qr_id %d", orderID, qr.ID)
	}
	var o domain.Order
	err := s.inTxWith(ctx, []string{attachQRSQL, orderByIDSQL}, func(ctx context.Context, _ *sql.Tx, st []*sql.Stmt) error {
		var err error
		o, err = attachQR(ctx, st[0], st[1], orderID, qr)
		return err
	})
	if err != nil {
		return domain.Order{}, fmt.Errorf("sqlite store: attach QR to %q: %w", orderID, err)
	}
	return o, nil
}

// attachQR is AttachQR's work inside a transaction, on its statements
// attachQRSQL and orderByIDSQL.
func attachQR(ctx context.Context, attach, sel *sql.Stmt, orderID string, qr domain.QRCode) (domain.Order, error) {
	o, err := scanOrder(attach.QueryRowContext(ctx, qr.ID, qr.URL, toMicro(now()), orderID))
	if errors.Is(err, sql.ErrNoRows) {
		// Either the order does not exist or another QR is already bound.
		o, err = scanOrder(sel.QueryRowContext(ctx, orderID))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Order{}, domain.ErrNotFound
		}
	}
	return o, err
}

func (s *Store) orderWhere(ctx context.Context, what, cond string, arg any) (domain.Order, error) {
	// cond is one of a few constants, so the cache stays small.
	row, err := s.readRow(ctx, `SELECT `+orderCols+` FROM orders WHERE `+cond+` LIMIT 1`, arg)
	var o domain.Order
	if err == nil {
		o, err = scanOrder(row)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Order{}, fmt.Errorf("sqlite store: order with %s %v: %w", what, arg, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("sqlite store: order with %s %v: %w", what, arg, err)
	}
	return o, nil
}

// OrderByID returns the order or domain.ErrNotFound.
func (s *Store) OrderByID(ctx context.Context, orderID string) (domain.Order, error) {
	return s.orderWhere(ctx, "order_id", "order_id = ?", orderID)
}

// OrdersByID returns those of orderIDs that exist, querying in chunks that
// stay below SQLite's limit on parameters.
func (s *Store) OrdersByID(ctx context.Context, orderIDs []string) ([]domain.Order, error) {
	var out []domain.Order
	for start := 0; start < len(orderIDs); start += inChunk {
		ids := orderIDs[start:min(start+inChunk, len(orderIDs))]
		rows, err := s.queryIn(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id IN (`+marks(len(ids))+`)`, len(ids), anys(ids)...)
		os, err := scanOrderRows("orders by id", rows, err)
		if err != nil {
			return nil, err
		}
		out = append(out, os...)
	}
	return out, nil
}

// inChunk bounds the ids of one IN (...) list, below SQLite's parameter limit.
const inChunk = 500

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// OrderByQRID returns the order bound to the QR code or domain.ErrNotFound.
func (s *Store) OrderByQRID(ctx context.Context, qrID int64) (domain.Order, error) {
	return s.orderWhere(ctx, "qr_id", "qr_id = ?", qrID)
}

// OrderByTID returns the order whose trade is tid or domain.ErrNotFound.
func (s *Store) OrderByTID(ctx context.Context, tid string) (domain.Order, error) {
	return s.orderWhere(ctx, "tid", "tid = ?", tid)
}

// ListOrders returns orders matching f in (CreatedAt, OrderID) order.
func (s *Store) ListOrders(ctx context.Context, f store.OrderFilter) ([]domain.Order, error) {
	var (
		conds []string
		args  []any
	)
	if f.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, f.Status)
	}
	if !f.CreatedAfter.IsZero() {
		conds, args = append(conds, "created_at >= ?"), append(args, toMicro(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		conds, args = append(conds, "created_at < ?"), append(args, toMicro(f.CreatedBefore))
	}
	if !f.AfterCreatedAt.IsZero() || f.AfterOrderID != "" {
		conds = append(conds, "(created_at, order_id) > (?, ?)")
		args = append(args, toMicro(f.AfterCreatedAt), f.AfterOrderID)
	}
	q := `SELECT ` + orderCols + ` FROM orders`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY created_at, order_id LIMIT ?"
	return s.queryOrders(ctx, "list orders", q, append(args, store.ClampLimit(f.Limit))...)
}

// UnpaidOrders lists orders at WAIT_BUYER_PAY with a QR, created in [from, to),
// oldest first.
func (s *Store) UnpaidOrders(ctx context.Context, from, to time.Time, limit int) ([]domain.Order, error) {
	return s.queryOrders(ctx, "unpaid orders", `
		SELECT `+orderCols+` FROM orders
		WHERE status = ? AND qr_id IS NOT NULL AND created_at >= ? AND created_at < ?
		ORDER BY created_at, order_id LIMIT ?`,
		domain.StatusWaitBuyerPay, toMicro(from), toMicro(to), store.ClampLimit(limit))
}

func (s *Store) queryOrders(ctx context.Context, what, q string, args ...any) ([]domain.Order, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	return scanOrderRows(what, rows, err)
}

// scanOrderRows reads the orders of a query's rows; what names the query in
// its errors, including err, the query's own.
func scanOrderRows(what string, rows *sql.Rows, err error) ([]domain.Order, error) {
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []domain.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return out, nil
}

const (
	observeSelectSQL = `SELECT ` + orderCols + ` FROM orders WHERE qr_id = ?`
	observeInsertSQL = `INSERT INTO observations (order_id, source, qr_id, tid, status,
			payment, buyer_id, pay_type, paid_at, observed_at, recorded_at, changed, from_status)
			VALUES (?, 'youzan', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	observeUpdateSQL = `UPDATE orders SET status = ?, tid = ?, payment = ?, buyer_id = ?,
				pay_type = ?, paid_at = ?, ever_paid = ?, updated_at = ? WHERE order_id = ?`
)

// RecordObservations applies obs in order in one transaction.
func (s *Store) RecordObservations(ctx context.Context, obs []domain.Observation) ([]domain.Change, error) {
	if len(obs) == 0 {
		return nil, nil
	}
	changes := make([]domain.Change, len(obs))
	// Prepared once per store: parsing dominates small statements.
	err := s.inTxWith(ctx, []string{observeSelectSQL, observeInsertSQL, observeUpdateSQL}, func(ctx context.Context, _ *sql.Tx, ps []*sql.Stmt) error {
		now := now()
		// The transaction holds SQLite's write lock from BEGIN IMMEDIATE, so
		// what is read here cannot change before it is written.
		sel, ins, upd := ps[0], ps[1], ps[2]
		byQR := make(map[int64]*domain.Order)
		var dirty []*domain.Order
		isDirty := make(map[*domain.Order]bool)
		for i, ob := range obs {
			o, ok := byQR[ob.QRID]
			if !ok {
				ord, err := scanOrder(sel.QueryRowContext(ctx, ob.QRID))
				if errors.Is(err, sql.ErrNoRows) {
					byQR[ob.QRID] = nil
					continue // not one of ours: zero Change
				}
				if err != nil {
					return err
				}
				o = &ord
				byQR[ob.QRID] = o
			}
			if o == nil {
				continue
			}
			from := o.Status
			changed, touched := domain.Apply(o, ob, now)
			changes[i] = domain.Change{Order: *o, Changed: changed, From: from}
			observed := ob.ObservedAt
			if observed.IsZero() {
				observed = now
			}
			if _, err := ins.ExecContext(ctx, o.OrderID, ob.QRID, ob.TID, ob.Status, ob.Payment, ob.BuyerID, ob.PayType,
				toNull(ob.PaidAt), toMicro(observed), toMicro(now), changed, from); err != nil {
				return err
			}
			if touched && !isDirty[o] {
				isDirty[o] = true
				dirty = append(dirty, o)
			}
		}
		// One write per order with its final state, after all observations.
		for _, o := range dirty {
			if _, err := upd.ExecContext(ctx,
				o.Status, nullString(o.TID), o.Payment, o.BuyerID, o.PayType, toNull(o.PaidAt), o.EverPaid,
				toMicro(o.UpdatedAt), o.OrderID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: record observations: %w", err)
	}
	return changes, nil
}

// CloseExpired moves an order still at WAIT_BUYER_PAY to TRADE_CLOSED.
func (s *Store) CloseExpired(ctx context.Context, orderID string, at time.Time) (domain.Change, error) {
	var ch domain.Change
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := now()
		if at.IsZero() {
			at = now
		}
		o, err := scanOrder(tx.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = ?`, orderID))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		if err != nil {
			return err
		}
		ch = domain.Change{Order: o, From: o.Status}
		if o.Status != domain.StatusWaitBuyerPay {
			return nil
		}
		o.Status, o.UpdatedAt = domain.StatusTradeClosed, now
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?`,
			o.Status, toMicro(o.UpdatedAt), orderID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO observations (order_id, source, qr_id, tid, status,
			observed_at, recorded_at, changed, from_status)
			VALUES (?, 'expiry', ?, ?, ?, ?, ?, 1, ?)`,
			orderID, nullInt(o.QRID), o.TID, o.Status, toMicro(at), toMicro(now), ch.From); err != nil {
			return err
		}
		ch.Order, ch.Changed = o, true
		return nil
	})
	if err != nil {
		return domain.Change{}, fmt.Errorf("sqlite store: close expired %q: %w", orderID, err)
	}
	return ch, nil
}

const deliveryCols = `event_id, endpoint, order_id, status, event, attempts, last_http_status,
	last_error, next_attempt_at, delivered_at, given_up_at, superseded_at, created_at, updated_at`

func scanDelivery(row scanner) (domain.Delivery, error) {
	var (
		d                                    domain.Delivery
		next, delivered, givenUp, superseded sql.NullInt64
		created, updated                     int64
	)
	if err := row.Scan(&d.EventID, &d.Endpoint, &d.OrderID, &d.Status, &d.Event, &d.Attempts,
		&d.LastHTTPStatus, &d.LastError, &next, &delivered, &givenUp, &superseded, &created, &updated); err != nil {
		return domain.Delivery{}, err
	}
	d.NextAttemptAt, d.DeliveredAt, d.GivenUpAt = fromNull(next), fromNull(delivered), fromNull(givenUp)
	d.SupersededAt = fromNull(superseded)
	d.CreatedAt, d.UpdatedAt = fromMicro(created), fromMicro(updated)
	return d, nil
}

// One attempt on a delivery; see RecordAttempts.
const attemptUpsertSQL = `INSERT INTO deliveries AS d (event_id, endpoint,
					order_id, status, event, attempts, last_http_status, last_error, next_attempt_at,
					delivered_at, given_up_at, superseded_at, created_at, updated_at)
				VALUES (?1, ?2, ?3, ?4, ?5, ?13, ?6, ?7, ?8, ?9, ?10, ?12, ?11, ?11)
				ON CONFLICT (event_id, endpoint) DO UPDATE SET
					attempts = d.attempts + excluded.attempts,
					-- A superseded record sends nothing: keep the last answer.
					last_http_status = CASE WHEN excluded.attempts = 0 THEN d.last_http_status ELSE excluded.last_http_status END,
					-- A record that sends nothing (held, queued again, superseded)
					-- leaves a finished delivery as it was: a drain marking a
					-- delivery delivered meanwhile must not make it look pending.
					last_error = CASE WHEN excluded.attempts = 0 AND (d.delivered_at IS NOT NULL OR d.given_up_at IS NOT NULL)
						THEN d.last_error ELSE excluded.last_error END,
					next_attempt_at = CASE WHEN excluded.attempts = 0 AND (d.delivered_at IS NOT NULL OR d.given_up_at IS NOT NULL)
						THEN d.next_attempt_at ELSE excluded.next_attempt_at END,
					delivered_at = coalesce(d.delivered_at, excluded.delivered_at),
					given_up_at = coalesce(d.given_up_at, excluded.given_up_at),
					superseded_at = coalesce(d.superseded_at, excluded.superseded_at),
					order_id = CASE WHEN d.order_id = '' THEN excluded.order_id ELSE d.order_id END,
					status = CASE WHEN d.status = '' THEN excluded.status ELSE d.status END,
					event = coalesce(d.event, excluded.event),
					updated_at = excluded.updated_at
				RETURNING ` + deliveryCols

// The attempt log, numbered by the delivery's count after this attempt.
const attemptLogSQL = `INSERT INTO delivery_attempts (event_id, order_id, endpoint,
				status, attempt, at, duration_ms, http_status, error_class, error, excerpt, outcome)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// RecordAttempts counts one attempt per element, in order, in one transaction.
func (s *Store) RecordAttempts(ctx context.Context, attempts []domain.Attempt) ([]domain.Delivery, error) {
	if len(attempts) == 0 {
		return nil, nil
	}
	out := make([]domain.Delivery, 0, len(attempts))
	err := s.inTxWith(ctx, []string{attemptUpsertSQL, attemptLogSQL}, func(ctx context.Context, _ *sql.Tx, ps []*sql.Stmt) error {
		upsert := ps[0]
		now := now()
		// The attempt log is written in the same transaction, numbered by
		// the delivery's count after this attempt.
		logStmt := ps[1]
		for _, a := range attempts {
			at := a.At
			if at.IsZero() {
				at = now
			}
			var delivered, givenUp, superseded sql.NullInt64
			if a.Delivered {
				delivered = sql.NullInt64{Int64: toMicro(at), Valid: true}
			}
			if a.GiveUp {
				givenUp = sql.NullInt64{Int64: toMicro(at), Valid: true}
			}
			tried := 1
			if a.Superseded {
				superseded, tried = sql.NullInt64{Int64: toMicro(at), Valid: true}, 0
			}
			if a.Held {
				tried = 0
			}
			var event []byte
			if len(a.Event) > 0 {
				event = a.Event
			}
			// The event, its order and status are what the first attempt
			// pushed; later attempts only fill them in if they were missing.
			// Delivered and given-up keep their first time: once delivered
			// stays delivered.
			d, err := scanDelivery(upsert.QueryRowContext(ctx,
				a.EventID, a.Endpoint, a.OrderID, a.Status, event, a.HTTPStatus, store.TruncateError(a.Error),
				toNull(a.NextAttemptAt), delivered, givenUp, toMicro(at), superseded, tried))
			if err != nil {
				return err
			}
			if tried == 1 {
				if _, err := logStmt.ExecContext(ctx, d.EventID, d.OrderID, d.Endpoint, d.Status, d.Attempts,
					toMicro(at), a.Duration.Milliseconds(), a.HTTPStatus, a.ErrorClass, store.TruncateError(a.Error),
					store.TruncateExcerpt(a.Excerpt), a.Outcome()); err != nil {
					return err
				}
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: record attempts: %w", err)
	}
	return out, nil
}

// DeliveriesForEvent returns the event's deliveries ordered by endpoint.
func (s *Store) DeliveriesForEvent(ctx context.Context, eventID string) ([]domain.Delivery, error) {
	return s.queryDeliveries(ctx, "deliveries for event",
		`SELECT `+deliveryCols+` FROM deliveries WHERE event_id = ? ORDER BY endpoint`, eventID)
}

// DeliveriesForOrders returns every delivery of the orders' events.
func (s *Store) DeliveriesForOrders(ctx context.Context, orderIDs []string) ([]domain.Delivery, error) {
	var out []domain.Delivery
	for start := 0; start < len(orderIDs); start += inChunk {
		ids := orderIDs[start:min(start+inChunk, len(orderIDs))]
		rows, err := s.queryIn(ctx,
			`SELECT `+deliveryCols+` FROM deliveries WHERE order_id IN (`+marks(len(ids))+`) ORDER BY event_id, endpoint`, len(ids), anys(ids)...)
		ds, err := scanDeliveryRows("deliveries for orders", rows, err)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}

// ListDeliveries returns deliveries matching f ordered by (UpdatedAt, EventID, Endpoint).
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]domain.Delivery, error) {
	var (
		conds []string
		args  []any
	)
	switch f.State {
	case "":
	case domain.DeliveryPending, domain.DeliveryDelivered, domain.DeliveryFailed, domain.DeliverySuperseded:
		conds, args = append(conds, "state = ?"), append(args, f.State)
	default:
		return nil, fmt.Errorf("sqlite store: list deliveries: unknown state %q", f.State)
	}
	if f.Endpoint != "" {
		conds, args = append(conds, "endpoint = ?"), append(args, f.Endpoint)
	}
	q := `SELECT ` + deliveryCols + ` FROM deliveries`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY updated_at, event_id, endpoint LIMIT ?"
	return s.queryDeliveries(ctx, "list deliveries", q, append(args, store.ClampLimit(f.Limit))...)
}

func (s *Store) queryDeliveries(ctx context.Context, what, q string, args ...any) ([]domain.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	return scanDeliveryRows(what, rows, err)
}

// scanDeliveryRows is scanOrderRows for deliveries.
func scanDeliveryRows(what string, rows *sql.Rows, err error) ([]domain.Delivery, error) {
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []domain.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return out, nil
}

// ReopenDelivery clears DeliveredAt and GivenUpAt, keeping Attempts, so that
// a replay counts on from where the delivery stopped.
func (s *Store) ReopenDelivery(ctx context.Context, eventID, endpoint string) (domain.Delivery, error) {
	var d domain.Delivery
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		d, err = scanDelivery(tx.QueryRowContext(ctx, `
			UPDATE deliveries SET delivered_at = NULL, given_up_at = NULL, updated_at = ?
			WHERE event_id = ? AND endpoint = ?
			RETURNING `+deliveryCols, toMicro(now()), eventID, endpoint))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		return err
	})
	if err != nil {
		return domain.Delivery{}, fmt.Errorf("sqlite store: reopen delivery %q to %q: %w", eventID, endpoint, err)
	}
	return d, nil
}

// toMicro is the stored form of a time: Unix microseconds, UTC.
func toMicro(t time.Time) int64 { return t.UnixMicro() }

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

func toNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toMicro(t), Valid: true}
}

func fromNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicro(v.Int64)
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullInt(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: n != 0} }

// --- helpers of this backend; the rules both share live in package store. ---

// trunc keeps what is stored (microseconds, as on Postgres), so that values
// read back compare equal to the ones written, on both backends.
func trunc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func now() time.Time { return trunc(time.Now()) }
