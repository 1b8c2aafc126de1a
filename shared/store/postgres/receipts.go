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

const receiptCols = `tid, push_type, status, body, received_at, state, attempts, last_error,
	first_seen, last_try_at, next_try_at, dead_at`

func scanReceipt(row scanner) (domain.ParkedReceipt, error) {
	var (
		r                    domain.ParkedReceipt
		received, next, dead *time.Time
	)
	if err := row.Scan(&r.TID, &r.Type, &r.Status, &r.Body, &received, &r.State, &r.Attempts, &r.LastError,
		&r.FirstSeen, &r.LastTryAt, &next, &dead); err != nil {
		return domain.ParkedReceipt{}, err
	}
	r.ReceivedAt, r.NextTryAt, r.DeadAt = fromNull(received), fromNull(next), fromNull(dead)
	r.FirstSeen, r.LastTryAt = r.FirstSeen.UTC(), r.LastTryAt.UTC()
	return r, nil
}

// ParkReceipts stores receipts whose trade was not found, in one transaction.
func (s *Store) ParkReceipts(ctx context.Context, rs []domain.ParkedReceipt) error {
	if len(rs) == 0 {
		return nil
	}
	now := now()
	batch := &pgx.Batch{}
	for _, r := range rs {
		at := r.LastTryAt
		if at.IsZero() {
			at = now
		}
		body := r.Body
		if body == nil {
			body = []byte{}
		}
		batch.Queue(`INSERT INTO parked_receipts AS p (tid, push_type, status, body, received_at, state,
				attempts, last_error, first_seen, last_try_at, next_try_at)
			VALUES ($1, $2, $3, $4, $5, 'parked', 1, $6, $7, $7, $8)
			ON CONFLICT (tid) DO UPDATE SET
				push_type = excluded.push_type,
				status = excluded.status,
				body = excluded.body,
				received_at = coalesce(excluded.received_at, p.received_at),
				attempts = p.attempts + 1,
				last_error = excluded.last_error,
				last_try_at = excluded.last_try_at`,
			r.TID, r.Type, r.Status, body, toNull(r.ReceivedAt), store.TruncateError(r.LastError),
			trunc(at), toNull(r.NextTryAt))
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres store: park receipts: %w", err)
	}
	return nil
}

// DueReceipts leases the parked receipts due at now; rows another retrier
// is leasing at this moment are skipped, not waited for.
func (s *Store) DueReceipts(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]domain.ParkedReceipt, error) {
	rows, err := s.pool.Query(ctx, `UPDATE parked_receipts SET next_try_at = $1
		WHERE tid IN (SELECT tid FROM parked_receipts
			WHERE state = 'parked' AND next_try_at <= $2 ORDER BY next_try_at, tid LIMIT $3
			FOR UPDATE SKIP LOCKED)
		RETURNING `+receiptCols, trunc(at.Add(lease)), trunc(at), store.ClampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres store: due receipts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ParkedReceipt, error) { return scanReceipt(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres store: due receipts: %w", err)
	}
	return out, nil
}

// RecordReceiptTry counts one more attempt for tid.
func (s *Store) RecordReceiptTry(ctx context.Context, tid string, try domain.ReceiptTry) (domain.ParkedReceipt, error) {
	at := try.At
	if at.IsZero() {
		at = now()
	}
	at = trunc(at)
	state, next, dead := domain.ReceiptParked, toNull(try.NextTryAt), (*time.Time)(nil)
	if try.Dead {
		state, next, dead = domain.ReceiptDead, nil, &at
	}
	r, err := scanReceipt(s.pool.QueryRow(ctx, `UPDATE parked_receipts SET
			attempts = attempts + 1, last_error = $2, last_try_at = $3, state = $4, next_try_at = $5,
			dead_at = coalesce(dead_at, $6)
		WHERE tid = $1
		RETURNING `+receiptCols, tid, store.TruncateError(try.Error), at, state, next, dead))
	if errors.Is(err, pgx.ErrNoRows) {
		err = domain.ErrNotFound
	}
	if err != nil {
		return domain.ParkedReceipt{}, fmt.Errorf("postgres store: record receipt try %q: %w", tid, err)
	}
	return r, nil
}

// ResolveReceipt deletes tid's row.
func (s *Store) ResolveReceipt(ctx context.Context, tid string, attempts int) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM parked_receipts WHERE tid = $1 AND attempts = $2`, tid, attempts); err != nil {
		return fmt.Errorf("postgres store: resolve receipt %q: %w", tid, err)
	}
	return nil
}

// ListReceipts returns parked receipts matching f ordered by (FirstSeen, TID).
func (s *Store) ListReceipts(ctx context.Context, f store.ReceiptFilter) ([]domain.ParkedReceipt, error) {
	q := `SELECT ` + receiptCols + ` FROM parked_receipts`
	args := []any{store.ClampLimit(f.Limit)}
	switch f.State {
	case "":
	case domain.ReceiptParked, domain.ReceiptDead:
		q += ` WHERE state = $2`
		args = append(args, f.State)
	default:
		return nil, fmt.Errorf("postgres store: list receipts: unknown state %q", f.State)
	}
	q += ` ORDER BY first_seen, tid LIMIT $1`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: list receipts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.ParkedReceipt, error) { return scanReceipt(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres store: list receipts: %w", err)
	}
	return out, nil
}

// ReopenReceipt makes tid due at at.
func (s *Store) ReopenReceipt(ctx context.Context, tid string, at time.Time) (domain.ParkedReceipt, error) {
	r, err := scanReceipt(s.pool.QueryRow(ctx, `UPDATE parked_receipts
		SET state = 'parked', next_try_at = $2, dead_at = NULL
		WHERE tid = $1 RETURNING `+receiptCols, tid, trunc(at)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = domain.ErrNotFound
	}
	if err != nil {
		return domain.ParkedReceipt{}, fmt.Errorf("postgres store: reopen receipt %q: %w", tid, err)
	}
	return r, nil
}
