package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/yzpay/yzpay/shared/domain"
)

// BindCheckout stores c unless the order has a checkout page already; see
// store.Store.
func (s *Store) BindCheckout(ctx context.Context, c domain.Checkout) (domain.Checkout, error) {
	var got domain.Checkout
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM orders WHERE order_id = ?`, c.OrderID).Scan(&exists); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return domain.ErrNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO checkouts (token, order_id, return_url, notify_url, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
			c.Token, c.OrderID, c.ReturnURL, c.NotifyURL, toMicro(now())); err != nil {
			return err
		}
		var err error
		got, err = scanCheckout(tx.QueryRowContext(ctx, `SELECT token, order_id, return_url, notify_url, created_at
			FROM checkouts WHERE order_id = ?`, c.OrderID))
		return err
	})
	if err != nil {
		return domain.Checkout{}, fmt.Errorf("sqlite store: bind checkout of %q: %w", c.OrderID, err)
	}
	return got, nil
}

// CheckoutByToken returns the checkout page's binding or domain.ErrNotFound.
func (s *Store) CheckoutByToken(ctx context.Context, token string) (domain.Checkout, error) {
	c, err := scanCheckout(s.r.QueryRowContext(ctx, `SELECT token, order_id, return_url, notify_url, created_at
		FROM checkouts WHERE token = ?`, token))
	if errors.Is(err, sql.ErrNoRows) {
		err = domain.ErrNotFound
	}
	if err != nil {
		// The token is the page's key: keep it out of errors and logs.
		return domain.Checkout{}, fmt.Errorf("sqlite store: checkout by token: %w", err)
	}
	return c, nil
}

func scanCheckout(row *sql.Row) (domain.Checkout, error) {
	var (
		c  domain.Checkout
		at int64
	)
	if err := row.Scan(&c.Token, &c.OrderID, &c.ReturnURL, &c.NotifyURL, &at); err != nil {
		return domain.Checkout{}, err
	}
	c.CreatedAt = fromMicro(at)
	return c, nil
}

// NotifyURLs returns the per-order notify_url of those of orderIDs that have
// one; see store.Store.
func (s *Store) NotifyURLs(ctx context.Context, orderIDs []string) (map[string]string, error) {
	out := map[string]string{}
	for chunk := range slices.Chunk(orderIDs, inChunk) {
		rows, err := s.r.QueryContext(ctx, `SELECT order_id, notify_url FROM checkouts
			WHERE notify_url <> '' AND order_id IN (`+marks(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: notify urls: %w", err)
		}
		for rows.Next() {
			var id, u string
			if err := rows.Scan(&id, &u); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite store: notify urls: %w", err)
			}
			out[id] = u
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlite store: notify urls: %w", err)
		}
	}
	return out, nil
}
