package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

const healthCols = `endpoint, state, since, failing_since, last_error, next_probe_at, updated_at`

func scanHealth(row scanner, extra ...any) (domain.EndpointHealth, error) {
	var (
		h                  domain.EndpointHealth
		since, updated     int64
		failing, nextProbe sql.NullInt64
	)
	dest := append([]any{&h.Endpoint, &h.State, &since, &failing, &h.LastError, &nextProbe, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return domain.EndpointHealth{}, err
	}
	h.Since, h.UpdatedAt = fromMicro(since), fromMicro(updated)
	h.FailingSince, h.NextProbeAt = fromNull(failing), fromNull(nextProbe)
	return h, nil
}

func upsertHealth(ctx context.Context, tx *sql.Tx, h domain.EndpointHealth) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO endpoint_health (`+healthCols+`) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
		ON CONFLICT (endpoint) DO UPDATE SET state = excluded.state, since = excluded.since,
			failing_since = excluded.failing_since, last_error = excluded.last_error,
			next_probe_at = excluded.next_probe_at, updated_at = excluded.updated_at`,
		h.Endpoint, h.State, toMicro(h.Since), toNull(h.FailingSince), h.LastError, toNull(h.NextProbeAt), toMicro(h.UpdatedAt))
	return err
}

// NoteEndpoint applies store.ApplyOutcome in one transaction.
func (s *Store) NoteEndpoint(ctx context.Context, o domain.EndpointOutcome, p store.HealthPolicy) (domain.EndpointHealth, bool, error) {
	if o.At.IsZero() {
		o.At = now()
	}
	o.At = trunc(o.At)
	var (
		h       domain.EndpointHealth
		changed bool
	)
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cur, err := scanHealth(tx.QueryRowContext(ctx, `SELECT `+healthCols+` FROM endpoint_health WHERE endpoint = ?`, o.Endpoint))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		h, changed = store.ApplyOutcome(cur, o, p)
		return upsertHealth(ctx, tx, h)
	})
	if err != nil {
		return domain.EndpointHealth{}, false, fmt.Errorf("sqlite store: note endpoint: %w", err)
	}
	return h, changed, nil
}

// ClaimEndpoint moves next_probe_at to until when it is due.
func (s *Store) ClaimEndpoint(ctx context.Context, endpoint, state string, at, until time.Time) (bool, error) {
	var n int64
	// Through inTx, as RecordAudit, not straight on the writer pool: the
	// write queues with the others and may share their commit, instead of
	// waiting outside the queue for the pool's one connection.
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE endpoint_health SET next_probe_at = ?1
			WHERE endpoint = ?2 AND state = ?3 AND (next_probe_at IS NULL OR next_probe_at <= ?4)`,
			toMicro(trunc(until)), endpoint, state, toMicro(trunc(at)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite store: claim endpoint: %w", err)
	}
	return n == 1, nil
}

// ResumeEndpoint makes a paused endpoint active.
func (s *Store) ResumeEndpoint(ctx context.Context, endpoint string, at time.Time) (domain.EndpointHealth, bool, error) {
	at = trunc(at)
	var (
		h       domain.EndpointHealth
		changed bool
	)
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cur, err := scanHealth(tx.QueryRowContext(ctx, `SELECT `+healthCols+` FROM endpoint_health WHERE endpoint = ?`, endpoint))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		if err != nil {
			return err
		}
		h = cur
		if h.State != domain.EndpointPaused {
			return nil
		}
		changed = true
		h.State, h.Since, h.FailingSince, h.NextProbeAt, h.UpdatedAt = domain.EndpointActive, at, time.Time{}, time.Time{}, at
		return upsertHealth(ctx, tx, h)
	})
	if err != nil {
		return domain.EndpointHealth{}, false, fmt.Errorf("sqlite store: resume endpoint: %w", err)
	}
	return h, changed, nil
}

// ListEndpointHealth lists every endpoint's health with its pending count.
func (s *Store) ListEndpointHealth(ctx context.Context) ([]domain.EndpointHealth, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+healthCols+`,
			(SELECT count(*) FROM deliveries d WHERE d.state = 'pending' AND d.endpoint = h.endpoint)
		FROM endpoint_health h ORDER BY endpoint`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: list endpoint health: %w", err)
	}
	defer rows.Close()
	var out []domain.EndpointHealth
	for rows.Next() {
		var pending int
		h, err := scanHealth(rows, &pending)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: list endpoint health: %w", err)
		}
		h.Pending = pending
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: list endpoint health: %w", err)
	}
	return out, nil
}

// PendingDeliveries lists the endpoint's pending deliveries, oldest first.
func (s *Store) PendingDeliveries(ctx context.Context, endpoint string, heldOnly bool, limit int) ([]domain.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM deliveries WHERE state = 'pending' AND endpoint = ?`
	if heldOnly {
		q += ` AND next_attempt_at IS NULL`
	}
	q += ` ORDER BY created_at, event_id LIMIT ?`
	return s.queryDeliveries(ctx, "pending deliveries", q, endpoint, store.ClampLimit(limit))
}
