package sqlite

import (
	"context"
	"database/sql"
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
	// Through inTx, not the pool: one write in a transaction as autocommit
	// makes it, which may share a commit with others.
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO audit_log (at, who, action, order_id, event_id, detail)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			toMicro(e.At), e.Who, e.Action, e.OrderID, e.EventID, e.Detail).Scan(&e.ID)
	})
	if err != nil {
		return domain.AuditEntry{}, fmt.Errorf("sqlite store: record audit %s: %w", e.Action, err)
	}
	return e, nil
}

// ListAudit returns audit entries newest first; see store.Store.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]domain.AuditEntry, error) {
	q := `SELECT id, at, who, action, order_id, event_id, detail FROM audit_log`
	var args []any
	if f.OrderID != "" {
		q, args = q+` WHERE order_id = ?`, append(args, f.OrderID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, store.ClampLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: list audit: %w", err)
	}
	defer rows.Close()
	var out []domain.AuditEntry
	for rows.Next() {
		var (
			e  domain.AuditEntry
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Who, &e.Action, &e.OrderID, &e.EventID, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite store: list audit: %w", err)
		}
		e.At = fromMicro(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: list audit: %w", err)
	}
	return out, nil
}

// PaidSince counts orders paid at or after since; see store.Store.
func (s *Store) PaidSince(ctx context.Context, since time.Time) (int, int64, error) {
	var (
		n   int
		sum int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(payment), 0) FROM orders
		WHERE ever_paid = 1 AND paid_at >= ?`, toMicro(since)).Scan(&n, &sum)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite store: paid since: %w", err)
	}
	return n, sum, nil
}
