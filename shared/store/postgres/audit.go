package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// RecordAudit appends an operator action; see store.Store.
func (s *Store) RecordAudit(ctx context.Context, e domain.AuditEntry) (domain.AuditEntry, error) {
	if e.At.IsZero() {
		e.At = now()
	}
	e.At = trunc(e.At)
	e.Detail = store.TruncateError(e.Detail)
	err := s.pool.QueryRow(ctx, `INSERT INTO audit_log (at, who, action, order_id, event_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		e.At, e.Who, e.Action, e.OrderID, e.EventID, e.Detail).Scan(&e.ID)
	if err != nil {
		return domain.AuditEntry{}, fmt.Errorf("postgres store: record audit %s: %w", e.Action, err)
	}
	return e, nil
}

// ListAudit returns audit entries newest first; see store.Store.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]domain.AuditEntry, error) {
	q := `SELECT id, at, who, action, order_id, event_id, detail FROM audit_log`
	args := []any{store.ClampLimit(f.Limit)}
	if f.OrderID != "" {
		q, args = q+` WHERE order_id = $2`, append(args, f.OrderID)
	}
	q += ` ORDER BY id DESC LIMIT $1`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: list audit: %w", err)
	}
	defer rows.Close()
	var out []domain.AuditEntry
	for rows.Next() {
		var e domain.AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.Who, &e.Action, &e.OrderID, &e.EventID, &e.Detail); err != nil {
			return nil, fmt.Errorf("postgres store: list audit: %w", err)
		}
		e.At = trunc(e.At)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: list audit: %w", err)
	}
	return out, nil
}

// PaidSince counts orders paid at or after since; see store.Store.
func (s *Store) PaidSince(ctx context.Context, since time.Time) (int, int64, error) {
	var (
		n   int
		sum int64
	)
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(payment), 0)::bigint FROM orders
		WHERE ever_paid AND paid_at >= $1`, since.UTC()).Scan(&n, &sum)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres store: paid since: %w", err)
	}
	return n, sum, nil
}
