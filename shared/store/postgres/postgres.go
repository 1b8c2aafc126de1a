// Package postgres is the production store.Store, on PostgreSQL through a pgx
// connection pool. Several gateway replicas may share one database: the claim
// protocol in Reserve and the row locks taken by RecordObservations keep them
// from creating two QR codes for an order or losing a status move.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/yzpay/yzpay/migrations"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// Store is a store.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to databaseURL and checks the connection, once. It does not
// migrate: call Migrate (or run the migrations elsewhere) before use.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	return open(ctx, databaseURL, 0)
}

// open is Open trying again every half second for up to wait while the
// server does not answer (wait <= 0: one try, bounded by ctx alone). Errors
// name the server by config.RedactURL, never with its password.
func open(ctx context.Context, databaseURL string, wait time.Duration) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx shows the URL with the password masked.
		return nil, fmt.Errorf("postgres store: parse DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: open pool: %w", err)
	}
	where := config.RedactURL(databaseURL)
	deadline := time.Now().Add(wait)
	for {
		// Fail at startup rather than on the first request when the URL is wrong.
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if wait > 0 {
			// The last try, at the deadline, still gets a moment.
			pctx, cancel = context.WithTimeout(ctx, max(time.Until(deadline), 500*time.Millisecond))
		}
		err = pool.Ping(pctx)
		cancel()
		if err == nil {
			return &Store{pool: pool}, nil
		}
		switch {
		case ctx.Err() != nil:
			pool.Close()
			return nil, fmt.Errorf("postgres store: connect to %s: %w", where, ctx.Err())
		case !retryable(err):
			pool.Close()
			return nil, fmt.Errorf("postgres store: connect to %s: %w", where, err)
		case wait <= 0:
			pool.Close()
			return nil, fmt.Errorf("postgres store: %s does not answer: %w", where, err)
		case !time.Now().Before(deadline):
			pool.Close()
			return nil, fmt.Errorf("postgres store: %s does not answer after %s: %w", where, wait, err)
		}
		t := time.NewTimer(min(500*time.Millisecond, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// retryable tells a server that is not up (yet) from one that answered and
// refused: a wrong password or database will not come right by waiting.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P03" // cannot_connect_now: starting up
	}
	return true
}

// Pool is the underlying pool, for health checks and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Migrate applies the pending migrations. It is idempotent and safe to call
// from several replicas at once: a session advisory lock lets one migrate
// while the others wait, then find nothing to do.
func (s *Store) Migrate(ctx context.Context) error {
	// Retry every second (goose's default is every 5s) so replicas that lost
	// the race start promptly; give up after five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("postgres store: migration lock: %w", err)
	}
	dir, err := fs.Sub(migrations.FS, "postgres")
	if err != nil {
		return fmt.Errorf("postgres store: migrations: %w", err)
	}
	// Closing this *sql.DB returns its connections to the pool; it does not
	// close the pool.
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir,
		goose.WithSessionLocker(locker),
		// Only the SQL files here; never Go migrations some other package
		// registered globally.
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("postgres store: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres store: migrate: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres store: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

const orderCols = `order_id, name, price, qr_id, qr_url, status, tid, payment,
	buyer_id, pay_type, paid_at, ever_paid, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanOrder(row scanner, extra ...any) (domain.Order, error) {
	var (
		o      domain.Order
		qrID   *int64
		tid    *string
		paidAt *time.Time
	)
	dest := append([]any{&o.OrderID, &o.Name, &o.Price, &qrID, &o.QRURL, &o.Status, &tid,
		&o.Payment, &o.BuyerID, &o.PayType, &paidAt, &o.EverPaid, &o.CreatedAt, &o.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return domain.Order{}, err
	}
	if qrID != nil {
		o.QRID = *qrID
	}
	if tid != nil {
		o.TID = *tid
	}
	o.PaidAt = fromNull(paidAt)
	o.CreatedAt = o.CreatedAt.UTC()
	o.UpdatedAt = o.UpdatedAt.UTC()
	return o, nil
}

// Reserve creates the order or finds it, and hands out the claim to create
// its QR code. See store.Reservation.
func (s *Store) Reserve(ctx context.Context, o domain.NewOrder, claimFor time.Duration) (store.Reservation, error) {
	if err := o.Validate(); err != nil {
		return store.Reservation{}, fmt.Errorf("postgres store: %w", err)
	}
	now := now()
	token := store.NewClaimToken()
	// Claim deadlines are computed and compared on the database clock: they
	// arbitrate between replicas whose own clocks may disagree.
	claimMicros := claimFor.Microseconds()
	var res store.Reservation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// ON CONFLICT DO NOTHING waits for a concurrent inserter of the same
		// order_id to commit, so exactly one caller gets the new row.
		ord, err := scanOrder(tx.QueryRow(ctx, `
			INSERT INTO orders (order_id, name, price, status, claim_token, claim_until, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, clock_timestamp() + $6 * interval '1 microsecond', $7, $7)
			ON CONFLICT (order_id) DO NOTHING
			RETURNING `+orderCols,
			o.OrderID, o.Name, o.Price, domain.StatusWaitBuyerPay, token, claimMicros, now))
		if err == nil {
			res = store.Reservation{Order: ord, Claimed: true, ClaimToken: token}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var live bool
		ord, err = scanOrder(tx.QueryRow(ctx, `
			SELECT `+orderCols+`, coalesce(claim_until >= clock_timestamp(), false)
			FROM orders WHERE order_id = $1 FOR UPDATE`, o.OrderID), &live)
		if err != nil {
			return err
		}
		if ord.Name != o.Name || ord.Price != o.Price {
			return fmt.Errorf("order %q: %w", o.OrderID, domain.ErrConflict)
		}
		if ord.QRID != 0 || live {
			res = store.Reservation{Order: ord}
			return nil
		}
		// No QR and the last claim (if any) is dead: its holder crashed or
		// gave up. Take it over.
		if _, err := tx.Exec(ctx, `
			UPDATE orders SET claim_token = $2, claim_until = clock_timestamp() + $3 * interval '1 microsecond'
			WHERE order_id = $1`, o.OrderID, token, claimMicros); err != nil {
			return err
		}
		res = store.Reservation{Order: ord, Claimed: true, ClaimToken: token}
		return nil
	})
	if err != nil {
		return store.Reservation{}, fmt.Errorf("postgres store: reserve %q: %w", o.OrderID, err)
	}
	return res, nil
}

// ReleaseClaim ends the caller's claim early; see store.Store.
func (s *Store) ReleaseClaim(ctx context.Context, orderID, token string) error {
	if _, err := s.pool.Exec(ctx, `
		UPDATE orders SET claim_token = NULL, claim_until = NULL
		WHERE order_id = $1 AND qr_id IS NULL AND claim_token = $2`, orderID, token); err != nil {
		return fmt.Errorf("postgres store: release claim on %q: %w", orderID, err)
	}
	return nil
}

// AttachQR binds qr to the order unless it already has a QR, in which case
// the order is returned with the QR that won.
func (s *Store) AttachQR(ctx context.Context, orderID string, qr domain.QRCode) (domain.Order, error) {
	if qr.ID <= 0 {
		return domain.Order{}, fmt.Errorf("postgres store: attach QR to %q: invalid qr_id %d", orderID, qr.ID)
	}
	o, err := scanOrder(s.pool.QueryRow(ctx, `
		UPDATE orders SET qr_id = $2, qr_url = $3, claim_token = NULL, claim_until = NULL, updated_at = $4
		WHERE order_id = $1 AND qr_id IS NULL
		RETURNING `+orderCols, orderID, qr.ID, qr.URL, now()))
	switch {
	case err == nil:
		return o, nil
	case errors.Is(err, pgx.ErrNoRows):
		// Either the order does not exist or another QR is already bound.
		return s.OrderByID(ctx, orderID)
	default:
		return domain.Order{}, fmt.Errorf("postgres store: attach QR to %q: %w", orderID, err)
	}
}

func (s *Store) orderWhere(ctx context.Context, what, cond string, arg any) (domain.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE `+cond+` LIMIT 1`, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Order{}, fmt.Errorf("postgres store: order with %s %v: %w", what, arg, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("postgres store: order with %s %v: %w", what, arg, err)
	}
	return o, nil
}

// OrderByID returns the order or domain.ErrNotFound.
func (s *Store) OrderByID(ctx context.Context, orderID string) (domain.Order, error) {
	return s.orderWhere(ctx, "order_id", "order_id = $1", orderID)
}

// OrdersByID returns those of orderIDs that exist.
func (s *Store) OrdersByID(ctx context.Context, orderIDs []string) ([]domain.Order, error) {
	if len(orderIDs) == 0 {
		return nil, nil
	}
	return s.queryOrders(ctx, "orders by id", `SELECT `+orderCols+` FROM orders WHERE order_id = ANY($1)`, orderIDs)
}

// OrderByQRID returns the order bound to the QR code or domain.ErrNotFound.
func (s *Store) OrderByQRID(ctx context.Context, qrID int64) (domain.Order, error) {
	return s.orderWhere(ctx, "qr_id", "qr_id = $1", qrID)
}

// OrderByTID returns the order whose trade is tid or domain.ErrNotFound.
func (s *Store) OrderByTID(ctx context.Context, tid string) (domain.Order, error) {
	return s.orderWhere(ctx, "tid", "tid = $1", tid)
}

// ListOrders returns orders matching f in (CreatedAt, OrderID) order.
func (s *Store) ListOrders(ctx context.Context, f store.OrderFilter) ([]domain.Order, error) {
	// Built per filter rather than with "$1 = '' OR ..." so that the planner
	// sees plain predicates and uses the (status, created_at, order_id) index.
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Status != "" {
		conds = append(conds, "status = "+arg(f.Status))
	}
	if !f.CreatedAfter.IsZero() {
		conds = append(conds, "created_at >= "+arg(trunc(f.CreatedAfter)))
	}
	if !f.CreatedBefore.IsZero() {
		conds = append(conds, "created_at < "+arg(trunc(f.CreatedBefore)))
	}
	if !f.AfterCreatedAt.IsZero() || f.AfterOrderID != "" {
		conds = append(conds, "(created_at, order_id) > ("+arg(trunc(f.AfterCreatedAt))+", "+arg(f.AfterOrderID)+")")
	}
	q := `SELECT ` + orderCols + ` FROM orders`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY created_at, order_id LIMIT " + arg(store.ClampLimit(f.Limit))
	return s.queryOrders(ctx, "list orders", q, args...)
}

// UnpaidOrders lists orders at WAIT_BUYER_PAY with a QR, created in [from, to),
// oldest first.
func (s *Store) UnpaidOrders(ctx context.Context, from, to time.Time, limit int) ([]domain.Order, error) {
	return s.queryOrders(ctx, "unpaid orders", `
		SELECT `+orderCols+` FROM orders
		WHERE status = $1 AND qr_id IS NOT NULL AND created_at >= $2 AND created_at < $3
		ORDER BY created_at, order_id LIMIT $4`,
		domain.StatusWaitBuyerPay, trunc(from), trunc(to), store.ClampLimit(limit))
}

func (s *Store) queryOrders(ctx context.Context, what, q string, args ...any) ([]domain.Order, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %s: %w", what, err)
	}
	var out []domain.Order // nil when there are none, as callers have always had it
	if out, err = pgx.AppendRows(out, rows, rowToOrder); err != nil {
		return nil, fmt.Errorf("postgres store: %s: %w", what, err)
	}
	return out, nil
}

func rowToOrder(row pgx.CollectableRow) (domain.Order, error) { return scanOrder(row) }

// RecordObservations applies obs in order in one transaction.
func (s *Store) RecordObservations(ctx context.Context, obs []domain.Observation) ([]domain.Change, error) {
	if len(obs) == 0 {
		return nil, nil
	}
	qrIDs := make([]int64, 0, len(obs))
	seen := make(map[int64]bool, len(obs))
	for _, ob := range obs {
		if ob.QRID != 0 && !seen[ob.QRID] {
			seen[ob.QRID] = true
			qrIDs = append(qrIDs, ob.QRID)
		}
	}
	now := now()
	changes := make([]domain.Change, len(obs))
	err := s.inTx2(ctx, func(first *pgx.Batch) {
		// Lock every order of the batch up front, in order_id order: a
		// concurrent batch touching the same orders then waits instead of
		// deadlocking, and the status read here cannot go stale before the
		// write.
		first.Queue(`SELECT `+orderCols+` FROM orders
			WHERE qr_id = ANY($1) ORDER BY order_id FOR UPDATE`, qrIDs)
	}, func(br pgx.BatchResults, second *pgx.Batch) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		byQR := make(map[int64]*domain.Order, len(qrIDs))
		for rows.Next() {
			o, err := scanOrder(rows)
			if err != nil {
				rows.Close()
				return err
			}
			byQR[o.QRID] = &o
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		// The history rows go in as one multi-row INSERT and the orders as one
		// UPDATE: a round trip and a plan per batch instead of per row.
		var h history
		var dirty []*domain.Order
		isDirty := make(map[*domain.Order]bool)
		for i, ob := range obs {
			o, ok := byQR[ob.QRID]
			if !ok {
				continue // not one of ours: zero Change
			}
			from := o.Status
			changed, touched := domain.Apply(o, ob, now)
			changes[i] = domain.Change{Order: *o, Changed: changed, From: from}
			observed := ob.ObservedAt
			if observed.IsZero() {
				observed = now
			}
			h.add(o.OrderID, ob, trunc(observed), changed, from)
			if touched && !isDirty[o] {
				isDirty[o] = true
				dirty = append(dirty, o)
			}
		}
		if len(h.orderID) == 0 {
			return nil
		}
		// ORDER BY n: history ids follow the order the observations were
		// applied in.
		second.Queue(`INSERT INTO observations (order_id, source, qr_id, tid, status, payment,
				buyer_id, pay_type, paid_at, observed_at, recorded_at, changed, from_status)
			SELECT order_id, 'youzan', qr_id, tid, status, payment, buyer_id, pay_type, paid_at, observed_at,
				$11, changed, from_status
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
				$8::timestamptz[], $9::timestamptz[], $10::boolean[], $12::text[]) WITH ORDINALITY
				AS v(order_id, qr_id, tid, status, payment, buyer_id, pay_type, paid_at, observed_at, changed, from_status, n)
			ORDER BY n`,
			h.orderID, h.qrID, h.tid, h.status, h.payment, h.buyerID, h.payType, h.paidAt, h.observedAt,
			h.changed, now, h.from)
		if len(dirty) > 0 {
			var u orderUpdates
			for _, o := range dirty {
				u.add(o)
			}
			second.Queue(`UPDATE orders AS o SET status = v.status, tid = v.tid, payment = v.payment,
				buyer_id = v.buyer_id, pay_type = v.pay_type, paid_at = v.paid_at, ever_paid = v.ever_paid,
				updated_at = v.updated_at
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
				$7::timestamptz[], $8::boolean[], $9::timestamptz[])
				AS v(order_id, status, tid, payment, buyer_id, pay_type, paid_at, ever_paid, updated_at)
			WHERE o.order_id = v.order_id`,
				u.orderID, u.status, u.tid, u.payment, u.buyerID, u.payType, u.paidAt, u.everPaid, u.updatedAt)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: record observations: %w", err)
	}
	return changes, nil
}

// inTx2 runs a read-then-write transaction in two round trips instead of
// pgx.BeginFunc's four: BEGIN goes out with the statements queued by read,
// and COMMIT with those write queues after looking at their results (br).
// The guarantees are BeginFunc's: one transaction; the locks the first
// statements take hold until the COMMIT; nothing is committed unless every
// statement succeeded (after an error the server skips the rest of the
// pipeline, COMMIT included, and the transaction is rolled back here); and
// inTx2 returns nil only once the COMMIT has been answered, that is durable
// (synchronous_commit), so a caller still acks only committed work. A write
// that queues nothing still commits (the read locks are released).
func (s *Store) inTx2(ctx context.Context, read func(b *pgx.Batch), write func(br pgx.BatchResults, b *pgx.Batch) error) (err error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if c.Conn().PgConn().TxStatus() != 'I' && !c.Conn().IsClosed() {
			// Not committed: an error, or a panic in write. A failed rollback
			// leaves the connection in a transaction, and Release then closes
			// it, which rolls back on the server.
			// Bounded: on a half-dead connection the rollback must not hang
			// the caller.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, _ = c.Exec(rctx, "rollback")
			cancel()
		}
		c.Release()
	}()
	first := &pgx.Batch{}
	first.Queue("begin")
	read(first)
	br := c.SendBatch(ctx, first)
	if _, err := br.Exec(); err != nil { // the begin
		br.Close()
		return err
	}
	second := &pgx.Batch{}
	werr := write(br, second)
	if err := br.Close(); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	second.Queue("commit")
	br = c.SendBatch(ctx, second)
	var tag pgconn.CommandTag
	for range second.QueuedQueries {
		if tag, err = br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		// What COMMIT answers in an aborted transaction. An error above
		// comes first, so this should not happen; never take it for a commit.
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// history collects observation rows column by column for one INSERT.
type history struct {
	orderID, tid, status, buyerID, payType, from []string
	qrID, payment                                []int64
	paidAt                                       []*time.Time
	observedAt                                   []time.Time
	changed                                      []bool
}

func (h *history) add(orderID string, ob domain.Observation, observed time.Time, changed bool, from string) {
	h.orderID = append(h.orderID, orderID)
	h.qrID = append(h.qrID, ob.QRID)
	h.tid = append(h.tid, ob.TID)
	h.status = append(h.status, ob.Status)
	h.payment = append(h.payment, ob.Payment)
	h.buyerID = append(h.buyerID, ob.BuyerID)
	h.payType = append(h.payType, ob.PayType)
	h.paidAt = append(h.paidAt, toNull(ob.PaidAt))
	h.observedAt = append(h.observedAt, observed)
	h.changed = append(h.changed, changed)
	h.from = append(h.from, from)
}

// orderUpdates collects the final state of the orders a batch moved.
type orderUpdates struct {
	orderID, status, buyerID, payType []string
	tid                               []*string
	payment                           []int64
	paidAt                            []*time.Time
	everPaid                          []bool
	updatedAt                         []time.Time
}

func (u *orderUpdates) add(o *domain.Order) {
	u.orderID = append(u.orderID, o.OrderID)
	u.status = append(u.status, o.Status)
	u.tid = append(u.tid, nullString(o.TID))
	u.payment = append(u.payment, o.Payment)
	u.buyerID = append(u.buyerID, o.BuyerID)
	u.payType = append(u.payType, o.PayType)
	u.paidAt = append(u.paidAt, toNull(o.PaidAt))
	u.everPaid = append(u.everPaid, o.EverPaid)
	u.updatedAt = append(u.updatedAt, o.UpdatedAt)
}

// CloseExpired moves an order still at WAIT_BUYER_PAY to TRADE_CLOSED.
func (s *Store) CloseExpired(ctx context.Context, orderID string, at time.Time) (domain.Change, error) {
	now := now()
	if at.IsZero() {
		at = now
	}
	var ch domain.Change
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		o, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = $1 FOR UPDATE`, orderID))
		if errors.Is(err, pgx.ErrNoRows) {
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
		if _, err := tx.Exec(ctx, `UPDATE orders SET status = $2, updated_at = $3 WHERE order_id = $1`,
			orderID, o.Status, o.UpdatedAt); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO observations (order_id, source, qr_id, tid, status,
			observed_at, recorded_at, changed, from_status)
			VALUES ($1, 'expiry', $2, $3, $4, $5, $6, true, $7)`,
			orderID, nullInt(o.QRID), o.TID, o.Status, trunc(at), now, ch.From); err != nil {
			return err
		}
		ch.Order, ch.Changed = o, true
		return nil
	})
	if err != nil {
		return domain.Change{}, fmt.Errorf("postgres store: close expired %q: %w", orderID, err)
	}
	return ch, nil
}

const deliveryCols = `event_id, endpoint, order_id, status, event, attempts, last_http_status,
	last_error, next_attempt_at, delivered_at, given_up_at, superseded_at, created_at, updated_at`

func scanDelivery(row scanner) (domain.Delivery, error) {
	var (
		d                                    domain.Delivery
		next, delivered, givenUp, superseded *time.Time
	)
	if err := row.Scan(&d.EventID, &d.Endpoint, &d.OrderID, &d.Status, &d.Event, &d.Attempts,
		&d.LastHTTPStatus, &d.LastError, &next, &delivered, &givenUp, &superseded, &d.CreatedAt, &d.UpdatedAt); err != nil {
		return domain.Delivery{}, err
	}
	d.NextAttemptAt, d.DeliveredAt, d.GivenUpAt = fromNull(next), fromNull(delivered), fromNull(givenUp)
	d.SupersededAt = fromNull(superseded)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, nil
}

// upsertDelivery is the ON CONFLICT part shared by both forms of
// RecordAttempts. The event, its order and status are what the first
// attempt pushed; later attempts only fill them in if they were missing.
// Delivered and given-up keep their first time: once delivered stays
// delivered.
const upsertDelivery = `
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

// attemptRow is one attempt as RecordAttempts writes it.
type attemptRow struct {
	at                            time.Time
	next, delivered, givenUp, sup *time.Time
	tried                         int32
	event                         []byte
	errText, excerpt, outcome     string
}

func newAttemptRow(a domain.Attempt, now time.Time) attemptRow {
	r := attemptRow{at: a.At, tried: 1, next: toNull(a.NextAttemptAt),
		errText: store.TruncateError(a.Error), excerpt: store.TruncateExcerpt(a.Excerpt), outcome: a.Outcome()}
	if r.at.IsZero() {
		r.at = now
	}
	r.at = trunc(r.at)
	if a.Delivered {
		r.delivered = &r.at
	}
	if a.GiveUp {
		r.givenUp = &r.at
	}
	if a.Superseded {
		r.sup, r.tried = &r.at, 0
	}
	if a.Held {
		r.tried = 0
	}
	if len(a.Event) > 0 {
		r.event = a.Event
	}
	return r
}

// RecordAttempts counts one attempt per element, in order, in one transaction.
func (s *Store) RecordAttempts(ctx context.Context, attempts []domain.Attempt) ([]domain.Delivery, error) {
	if len(attempts) == 0 {
		return nil, nil
	}
	now := now()
	rows := make([]attemptRow, len(attempts))
	for i, a := range attempts {
		rows[i] = newAttemptRow(a, now)
	}
	var (
		out []domain.Delivery
		err error
	)
	if len(attempts) > 1 && distinctDeliveries(attempts) {
		out, err = s.recordAttemptsAtOnce(ctx, attempts, rows)
	} else {
		out, err = s.recordAttemptsEach(ctx, attempts, rows)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres store: record attempts: %w", err)
	}
	return out, nil
}

// distinctDeliveries tells whether no delivery is counted twice: one
// INSERT … ON CONFLICT cannot update a row twice.
func distinctDeliveries(attempts []domain.Attempt) bool {
	type key struct{ event, endpoint string }
	seen := make(map[key]struct{}, len(attempts))
	for _, a := range attempts {
		k := key{a.EventID, a.Endpoint}
		if _, dup := seen[k]; dup {
			return false
		}
		seen[k] = struct{}{}
	}
	return true
}

// recordAttemptsAtOnce writes a batch of distinct deliveries with one
// statement over arrays: one execution on the server instead of one per
// attempt. Same rows as recordAttemptsEach: the upsert is the same, each
// delivery is touched once, and the log rows go in in the order of the
// attempts (ORDER BY n), each numbered by its delivery's count after it. One
// statement is one transaction, committed before the answer.
func (s *Store) recordAttemptsAtOnce(ctx context.Context, attempts []domain.Attempt, rows []attemptRow) ([]domain.Delivery, error) {
	n := len(attempts)
	var (
		eventID, endpoint, orderID, status, errText, errClass, excerpt, outcome = make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n)
		event                         = make([][]byte, n)
		httpStatus, tried             = make([]int32, n), make([]int32, n)
		at                            = make([]time.Time, n)
		next, delivered, givenUp, sup = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		duration                      = make([]int64, n)
	)
	for i, a := range attempts {
		r := rows[i]
		eventID[i], endpoint[i], orderID[i], status[i] = a.EventID, a.Endpoint, a.OrderID, a.Status
		errText[i], errClass[i], excerpt[i], outcome[i] = r.errText, a.ErrorClass, r.excerpt, r.outcome
		event[i], httpStatus[i], tried[i], at[i] = r.event, int32(a.HTTPStatus), r.tried, r.at
		next[i], delivered[i], givenUp[i], sup[i] = r.next, r.delivered, r.givenUp, r.sup
		duration[i] = a.Duration.Milliseconds()
	}
	q, err := s.pool.Query(ctx, `WITH v AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::integer[],
				$7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
				$12::timestamptz[], $13::integer[], $14::bigint[], $15::text[], $16::text[], $17::text[])
				WITH ORDINALITY AS v(event_id, endpoint, order_id, status, event, http_status, error,
					next_attempt_at, delivered_at, given_up_at, at, superseded_at, tried, duration_ms,
					error_class, excerpt, outcome, n)),
		d AS (INSERT INTO deliveries AS d (event_id, endpoint, order_id, status, event, attempts,
				last_http_status, last_error, next_attempt_at, delivered_at, given_up_at, superseded_at, created_at, updated_at)
			SELECT event_id, endpoint, order_id, status, event, tried, http_status, error, next_attempt_at,
				delivered_at, given_up_at, superseded_at, at, at
			FROM v ORDER BY n`+upsertDelivery+`),
		j AS (SELECT d.*, v.n, v.at AS tried_at, v.tried, v.duration_ms, v.http_status, v.error_class,
				v.error AS tried_error, v.excerpt, v.outcome
			FROM d JOIN v ON v.event_id COLLATE "C" = d.event_id AND v.endpoint COLLATE "C" = d.endpoint),
		l AS (INSERT INTO delivery_attempts (event_id, order_id, endpoint, status, attempt, at, duration_ms,
				http_status, error_class, error, excerpt, outcome)
			SELECT event_id, order_id, endpoint, status, attempts, tried_at, duration_ms, http_status,
				error_class, tried_error, excerpt, outcome
			FROM j WHERE tried = 1 ORDER BY n)
		SELECT `+deliveryCols+` FROM j ORDER BY n`,
		eventID, endpoint, orderID, status, event, httpStatus, errText, next, delivered, givenUp, at, sup, tried,
		duration, errClass, excerpt, outcome)
	if err != nil {
		return nil, err
	}
	out, err := pgx.AppendRows(make([]domain.Delivery, 0, n), q, rowToDelivery)
	if err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("%d deliveries written for %d attempts", len(out), n)
	}
	return out, nil
}

// recordAttemptsEach writes the attempts one statement each, in order: a
// delivery may be counted more than once.
func (s *Store) recordAttemptsEach(ctx context.Context, attempts []domain.Attempt, rows []attemptRow) ([]domain.Delivery, error) {
	batch := &pgx.Batch{}
	for i, a := range attempts {
		r := rows[i]
		// The attempt-log row goes in the same statement (a data-modifying
		// CTE), numbered by the delivery's count after this attempt: no
		// extra round trip, and the log cannot disagree with the count.
		batch.Queue(`WITH d AS (INSERT INTO deliveries AS d (event_id, endpoint, order_id, status, event, attempts,
				last_http_status, last_error, next_attempt_at, delivered_at, given_up_at, superseded_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $13, $6, $7, $8, $9, $10, $12, $11, $11)`+upsertDelivery+`),
			l AS (INSERT INTO delivery_attempts (event_id, order_id, endpoint, status, attempt, at, duration_ms,
					http_status, error_class, error, excerpt, outcome)
				SELECT event_id, order_id, endpoint, status, attempts, $11, $14, $6, $15, $7, $16, $17
				FROM d WHERE $13::integer = 1)
			SELECT `+deliveryCols+` FROM d`,
			a.EventID, a.Endpoint, a.OrderID, a.Status, r.event, a.HTTPStatus, r.errText,
			r.next, r.delivered, r.givenUp, r.at, r.sup, r.tried,
			a.Duration.Milliseconds(), a.ErrorClass, r.excerpt, r.outcome)
	}
	out := make([]domain.Delivery, 0, len(attempts))
	// No BEGIN and COMMIT of our own: a batch is one pipeline ending in a
	// single Sync, which the server runs as one implicit transaction. It is
	// all or nothing as before (an error skips the rest and rolls back), and
	// Close returns only after the Sync's commit has been answered, that is
	// durable, so the notifier still acks only what is committed. Two round
	// trips fewer per batch.
	br := s.pool.SendBatch(ctx, batch)
	for range attempts {
		d, err := scanDelivery(br.QueryRow())
		if err != nil {
			br.Close()
			return nil, err
		}
		out = append(out, d)
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// DeliveriesForEvent returns the event's deliveries ordered by endpoint.
func (s *Store) DeliveriesForEvent(ctx context.Context, eventID string) ([]domain.Delivery, error) {
	return s.queryDeliveries(ctx, "deliveries for event",
		`SELECT `+deliveryCols+` FROM deliveries WHERE event_id = $1 ORDER BY endpoint`, eventID)
}

// DeliveriesForOrders returns every delivery of the orders' events.
func (s *Store) DeliveriesForOrders(ctx context.Context, orderIDs []string) ([]domain.Delivery, error) {
	if len(orderIDs) == 0 {
		return nil, nil
	}
	return s.queryDeliveries(ctx, "deliveries for orders",
		`SELECT `+deliveryCols+` FROM deliveries WHERE order_id = ANY($1) ORDER BY event_id, endpoint`, orderIDs)
}

// ListDeliveries returns deliveries matching f ordered by (UpdatedAt, EventID, Endpoint).
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]domain.Delivery, error) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	switch f.State {
	case "":
	case domain.DeliveryPending, domain.DeliveryDelivered, domain.DeliveryFailed, domain.DeliverySuperseded:
		conds = append(conds, "state = "+arg(f.State))
	default:
		return nil, fmt.Errorf("postgres store: list deliveries: unknown state %q", f.State)
	}
	if f.Endpoint != "" {
		conds = append(conds, "endpoint = "+arg(f.Endpoint))
	}
	q := `SELECT ` + deliveryCols + ` FROM deliveries`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY updated_at, event_id, endpoint LIMIT " + arg(store.ClampLimit(f.Limit))
	return s.queryDeliveries(ctx, "list deliveries", q, args...)
}

func (s *Store) queryDeliveries(ctx context.Context, what, q string, args ...any) ([]domain.Delivery, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %s: %w", what, err)
	}
	var out []domain.Delivery // nil when there are none, as callers have always had it
	if out, err = pgx.AppendRows(out, rows, rowToDelivery); err != nil {
		return nil, fmt.Errorf("postgres store: %s: %w", what, err)
	}
	return out, nil
}

func rowToDelivery(row pgx.CollectableRow) (domain.Delivery, error) { return scanDelivery(row) }

// ReopenDelivery clears DeliveredAt and GivenUpAt, keeping Attempts, so that
// a replay counts on from where the delivery stopped.
func (s *Store) ReopenDelivery(ctx context.Context, eventID, endpoint string) (domain.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `
		UPDATE deliveries SET delivered_at = NULL, given_up_at = NULL, updated_at = $3
		WHERE event_id = $1 AND endpoint = $2
		RETURNING `+deliveryCols, eventID, endpoint, now()))
	if errors.Is(err, pgx.ErrNoRows) {
		err = domain.ErrNotFound
	}
	if err != nil {
		return domain.Delivery{}, fmt.Errorf("postgres store: reopen delivery %q to %q: %w", eventID, endpoint, err)
	}
	return d, nil
}

// --- helpers of this backend; the rules both share live in package store. ---

// trunc drops what Postgres cannot keep, so that values read back compare
// equal to the ones written, on both backends.
func trunc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func now() time.Time { return trunc(time.Now()) }

func toNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = trunc(t)
	return &t
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullInt(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

// OpenMigrated opens the store, waiting up to wait for the server to
// answer (see STARTUP_TIMEOUT), and applies the migrations (idempotent, and
// advisory-locked so that replicas starting together do not race). The
// migrations themselves are not bounded by wait.
func OpenMigrated(ctx context.Context, databaseURL string, wait time.Duration) (*Store, error) {
	s, err := open(ctx, databaseURL, wait)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
