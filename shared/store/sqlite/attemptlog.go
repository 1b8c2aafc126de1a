package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

const attemptCols = `event_id, order_id, endpoint, status, attempt, at, duration_ms, http_status,
	error_class, error, excerpt, outcome`

func (s *Store) queryAttempts(ctx context.Context, q string, args ...any) ([]domain.AttemptRecord, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.AttemptRecord
	for rows.Next() {
		var a domain.AttemptRecord
		var at int64
		if err := rows.Scan(&a.EventID, &a.OrderID, &a.Endpoint, &a.Status, &a.Attempt, &at, &a.DurationMS,
			&a.HTTPStatus, &a.ErrorClass, &a.Error, &a.Excerpt, &a.Outcome); err != nil {
			return nil, err
		}
		a.At = fromMicro(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AttemptsForEvent returns the event's attempt log in time order.
func (s *Store) AttemptsForEvent(ctx context.Context, eventID string) ([]domain.AttemptRecord, error) {
	out, err := s.queryAttempts(ctx, `SELECT `+attemptCols+` FROM delivery_attempts
		WHERE event_id = ? ORDER BY at, endpoint, attempt`, eventID)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: attempts for event %q: %w", eventID, err)
	}
	return out, nil
}

// OrderTimeline reads the order, its status history, its attempts and its
// superseded deliveries, and merges them (store.Timeline).
func (s *Store) OrderTimeline(ctx context.Context, orderID string) ([]domain.TimelineEntry, error) {
	o, err := s.OrderByID(ctx, orderID)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return fmt.Errorf("sqlite store: order timeline %q: %w", orderID, err) }
	rows, err := s.r.QueryContext(ctx, `SELECT source, tid, status, from_status, changed, payment, observed_at
		FROM observations WHERE order_id = ? ORDER BY id`, orderID)
	if err != nil {
		return nil, fail(err)
	}
	var hist []store.HistoryRow
	for rows.Next() {
		var h store.HistoryRow
		var at int64
		if err := rows.Scan(&h.Source, &h.TID, &h.Status, &h.From, &h.Changed, &h.Payment, &at); err != nil {
			rows.Close()
			return nil, fail(err)
		}
		h.At = fromMicro(at)
		hist = append(hist, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fail(err)
	}
	attempts, err := s.queryAttempts(ctx, `SELECT `+attemptCols+` FROM delivery_attempts
		WHERE order_id = ? ORDER BY at, endpoint, attempt`, orderID)
	if err != nil {
		return nil, fail(err)
	}
	superseded, err := s.queryDeliveries(ctx, "order timeline",
		`SELECT `+deliveryCols+` FROM deliveries WHERE order_id = ? AND superseded_at IS NOT NULL
		ORDER BY superseded_at, endpoint`, orderID)
	if err != nil {
		return nil, err
	}
	return store.Timeline(o, hist, attempts, superseded), nil
}

// DeleteAttemptsBefore deletes the oldest attempt-log rows older than
// before, at most limit of them, so that one statement never holds locks
// on a month of rows.
func (s *Store) DeleteAttemptsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 1000
	}
	var n int64
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM delivery_attempts WHERE id IN (
			SELECT id FROM delivery_attempts WHERE at < ? ORDER BY at LIMIT ?)`, toMicro(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: delete attempts before %s: %w", before.Format(time.RFC3339), err)
	}
	return int(n), nil
}
