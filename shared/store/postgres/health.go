package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

const healthCols = `endpoint, state, since, failing_since, last_error, next_probe_at, updated_at`

func scanHealth(row scanner, extra ...any) (domain.EndpointHealth, error) {
	var (
		h                  domain.EndpointHealth
		failing, nextProbe *time.Time
	)
	dest := append([]any{&h.Endpoint, &h.State, &h.Since, &failing, &h.LastError, &nextProbe, &h.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return domain.EndpointHealth{}, err
	}
	h.Since, h.UpdatedAt = h.Since.UTC(), h.UpdatedAt.UTC()
	h.FailingSince, h.NextProbeAt = fromNull(failing), fromNull(nextProbe)
	return h, nil
}

func upsertHealth(ctx context.Context, tx pgx.Tx, h domain.EndpointHealth) error {
	_, err := tx.Exec(ctx, `INSERT INTO endpoint_health (`+healthCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (endpoint) DO UPDATE SET state = excluded.state, since = excluded.since,
			failing_since = excluded.failing_since, last_error = excluded.last_error,
			next_probe_at = excluded.next_probe_at, updated_at = excluded.updated_at`,
		h.Endpoint, h.State, trunc(h.Since), toNull(h.FailingSince), h.LastError, toNull(h.NextProbeAt), trunc(h.UpdatedAt))
	return err
}

// lockHealth reads the endpoint's row for update, creating it first so that
// concurrent first failures serialise on it.
func lockHealth(ctx context.Context, tx pgx.Tx, endpoint string, at time.Time, create bool) (domain.EndpointHealth, error) {
	if create {
		if _, err := tx.Exec(ctx, `INSERT INTO endpoint_health (endpoint, state, since, updated_at)
			VALUES ($1, 'active', $2, $2) ON CONFLICT (endpoint) DO NOTHING`, endpoint, at); err != nil {
			return domain.EndpointHealth{}, err
		}
	}
	return scanHealth(tx.QueryRow(ctx, `SELECT `+healthCols+` FROM endpoint_health WHERE endpoint = $1 FOR UPDATE`, endpoint))
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := lockHealth(ctx, tx, o.Endpoint, o.At, true)
		if err != nil {
			return err
		}
		h, changed = store.ApplyOutcome(cur, o, p)
		return upsertHealth(ctx, tx, h)
	})
	if err != nil {
		return domain.EndpointHealth{}, false, fmt.Errorf("postgres store: note endpoint: %w", err)
	}
	return h, changed, nil
}

// ClaimEndpoint moves next_probe_at to until when it is due.
func (s *Store) ClaimEndpoint(ctx context.Context, endpoint, state string, at, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE endpoint_health SET next_probe_at = $1
		WHERE endpoint = $2 AND state = $3 AND (next_probe_at IS NULL OR next_probe_at <= $4)`,
		trunc(until), endpoint, state, trunc(at))
	if err != nil {
		return false, fmt.Errorf("postgres store: claim endpoint: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ResumeEndpoint makes a paused endpoint active.
func (s *Store) ResumeEndpoint(ctx context.Context, endpoint string, at time.Time) (domain.EndpointHealth, bool, error) {
	at = trunc(at)
	var (
		h       domain.EndpointHealth
		changed bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := lockHealth(ctx, tx, endpoint, at, false)
		if errors.Is(err, pgx.ErrNoRows) {
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
		return domain.EndpointHealth{}, false, fmt.Errorf("postgres store: resume endpoint: %w", err)
	}
	return h, changed, nil
}

// ListEndpointHealth lists every endpoint's health with its pending count.
func (s *Store) ListEndpointHealth(ctx context.Context) ([]domain.EndpointHealth, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+healthCols+`,
			(SELECT count(*) FROM deliveries d WHERE d.state = 'pending' AND d.endpoint = h.endpoint)
		FROM endpoint_health h ORDER BY endpoint`)
	if err != nil {
		return nil, fmt.Errorf("postgres store: list endpoint health: %w", err)
	}
	defer rows.Close()
	var out []domain.EndpointHealth
	for rows.Next() {
		var pending int64
		h, err := scanHealth(rows, &pending)
		if err != nil {
			return nil, fmt.Errorf("postgres store: list endpoint health: %w", err)
		}
		h.Pending = int(pending)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: list endpoint health: %w", err)
	}
	return out, nil
}

// PendingDeliveries lists the endpoint's pending deliveries, oldest first.
func (s *Store) PendingDeliveries(ctx context.Context, endpoint string, heldOnly bool, limit int) ([]domain.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM deliveries WHERE state = 'pending' AND endpoint = $1`
	if heldOnly {
		q += ` AND next_attempt_at IS NULL`
	}
	q += ` ORDER BY created_at, event_id LIMIT $2`
	return s.queryDeliveries(ctx, "pending deliveries", q, endpoint, store.ClampLimit(limit))
}
