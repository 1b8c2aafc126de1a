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

const receiptCols = `tid, push_type, status, body, received_at, state, attempts, last_error,
	first_seen, last_try_at, next_try_at, dead_at`

func scanReceipt(row scanner) (domain.ParkedReceipt, error) {
	var (
		r                    domain.ParkedReceipt
		received, next, dead sql.NullInt64
		firstSeen, lastTry   int64
	)
	if err := row.Scan(&r.TID, &r.Type, &r.Status, &r.Body, &received, &r.State, &r.Attempts, &r.LastError,
		&firstSeen, &lastTry, &next, &dead); err != nil {
		return domain.ParkedReceipt{}, err
	}
	r.ReceivedAt, r.NextTryAt, r.DeadAt = fromNull(received), fromNull(next), fromNull(dead)
	r.FirstSeen, r.LastTryAt = fromMicro(firstSeen), fromMicro(lastTry)
	return r, nil
}

// ParkReceipts stores receipts whose trade was not found, in one transaction.
func (s *Store) ParkReceipts(ctx context.Context, rs []domain.ParkedReceipt) error {
	if len(rs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := now()
		for _, r := range rs {
			at := r.LastTryAt
			if at.IsZero() {
				at = now
			}
			body := r.Body
			if body == nil {
				body = []byte{}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO parked_receipts AS p (tid, push_type, status, body,
					received_at, state, attempts, last_error, first_seen, last_try_at, next_try_at)
				VALUES (?1, ?2, ?3, ?4, ?5, 'parked', 1, ?6, ?7, ?7, ?8)
				ON CONFLICT (tid) DO UPDATE SET
					push_type = excluded.push_type,
					status = excluded.status,
					body = excluded.body,
					received_at = coalesce(excluded.received_at, p.received_at),
					attempts = p.attempts + 1,
					last_error = excluded.last_error,
					last_try_at = excluded.last_try_at`,
				r.TID, r.Type, r.Status, body, toNull(r.ReceivedAt), store.TruncateError(r.LastError),
				toMicro(at), toNull(r.NextTryAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite store: park receipts: %w", err)
	}
	return nil
}

// DueReceipts leases the parked receipts due at now.
func (s *Store) DueReceipts(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]domain.ParkedReceipt, error) {
	var out []domain.ParkedReceipt
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE parked_receipts SET next_try_at = ?1
			WHERE tid IN (SELECT tid FROM parked_receipts
				WHERE state = 'parked' AND next_try_at <= ?2 ORDER BY next_try_at, tid LIMIT ?3)
			RETURNING `+receiptCols, toMicro(at.Add(lease)), toMicro(at), store.ClampLimit(limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanReceipt(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: due receipts: %w", err)
	}
	return out, nil
}

// RecordReceiptTry counts one more attempt for tid.
func (s *Store) RecordReceiptTry(ctx context.Context, tid string, try domain.ReceiptTry) (domain.ParkedReceipt, error) {
	at := try.At
	if at.IsZero() {
		at = now()
	}
	state, next, dead := domain.ReceiptParked, toNull(try.NextTryAt), sql.NullInt64{}
	if try.Dead {
		state, next, dead = domain.ReceiptDead, sql.NullInt64{}, toNull(at)
	}
	var r domain.ParkedReceipt
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		r, err = scanReceipt(tx.QueryRowContext(ctx, `UPDATE parked_receipts SET
				attempts = attempts + 1, last_error = ?2, last_try_at = ?3, state = ?4, next_try_at = ?5,
				dead_at = coalesce(dead_at, ?6)
			WHERE tid = ?1
			RETURNING `+receiptCols, tid, store.TruncateError(try.Error), toMicro(at), state, next, dead))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		return err
	})
	if err != nil {
		return domain.ParkedReceipt{}, fmt.Errorf("sqlite store: record receipt try %q: %w", tid, err)
	}
	return r, nil
}

// ResolveReceipt deletes tid's row.
func (s *Store) ResolveReceipt(ctx context.Context, tid string, attempts int) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM parked_receipts WHERE tid = ? AND attempts = ?`, tid, attempts)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: resolve receipt %q: %w", tid, err)
	}
	return nil
}

// ListReceipts returns parked receipts matching f ordered by (FirstSeen, TID).
func (s *Store) ListReceipts(ctx context.Context, f store.ReceiptFilter) ([]domain.ParkedReceipt, error) {
	q := `SELECT ` + receiptCols + ` FROM parked_receipts`
	var args []any
	switch f.State {
	case "":
	case domain.ReceiptParked, domain.ReceiptDead:
		q += ` WHERE state = ?`
		args = append(args, f.State)
	default:
		return nil, fmt.Errorf("sqlite store: list receipts: unknown state %q", f.State)
	}
	q += ` ORDER BY first_seen, tid LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, store.ClampLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: list receipts: %w", err)
	}
	defer rows.Close()
	var out []domain.ParkedReceipt
	for rows.Next() {
		r, err := scanReceipt(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: list receipts: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: list receipts: %w", err)
	}
	return out, nil
}

// ReopenReceipt makes tid due at at.
func (s *Store) ReopenReceipt(ctx context.Context, tid string, at time.Time) (domain.ParkedReceipt, error) {
	var r domain.ParkedReceipt
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		r, err = scanReceipt(tx.QueryRowContext(ctx, `UPDATE parked_receipts
			SET state = 'parked', next_try_at = ?2, dead_at = NULL
			WHERE tid = ?1 RETURNING `+receiptCols, tid, toMicro(at)))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		return err
	})
	if err != nil {
		return domain.ParkedReceipt{}, fmt.Errorf("sqlite store: reopen receipt %q: %w", tid, err)
	}
	return r, nil
}
