package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/yzpay/yzpay/shared/domain"
)

// BindCheckout stores c unless the order has a checkout page already; see
// store.Store.
func (s *Store) BindCheckout(ctx context.Context, c domain.Checkout) (domain.Checkout, error) {
	// One statement: insert if absent, else return what is there. The CTE
	// cannot see the row a concurrent insert made, so a lost race falls
	// through to the second query.
	got, err := scanCheckout(s.pool.QueryRow(ctx, `
		INSERT INTO checkouts (token, order_id, return_url, notify_url, created_at)
		SELECT $1, $2, $3, $5, $4 WHERE EXISTS (SELECT 1 FROM orders WHERE order_id = $2)
		ON CONFLICT (order_id) DO NOTHING
		RETURNING token, order_id, return_url, notify_url, created_at`, c.Token, c.OrderID, c.ReturnURL, now(), c.NotifyURL))
	if errors.Is(err, pgx.ErrNoRows) {
		got, err = scanCheckout(s.pool.QueryRow(ctx, `SELECT token, order_id, return_url, notify_url, created_at
			FROM checkouts WHERE order_id = $1`, c.OrderID))
		if errors.Is(err, pgx.ErrNoRows) {
			err = domain.ErrNotFound // no such order
		}
	}
	if err != nil {
		return domain.Checkout{}, fmt.Errorf("postgres store: bind checkout of %q: %w", c.OrderID, err)
	}
	return got, nil
}

// CheckoutByToken returns the checkout page's binding or domain.ErrNotFound.
func (s *Store) CheckoutByToken(ctx context.Context, token string) (domain.Checkout, error) {
	c, err := scanCheckout(s.pool.QueryRow(ctx, `SELECT token, order_id, return_url, notify_url, created_at
		FROM checkouts WHERE token = $1`, token))
	if errors.Is(err, pgx.ErrNoRows) {
		err = domain.ErrNotFound
	}
	if err != nil {
		// The token is the page's key: keep it out of errors and logs.
		return domain.Checkout{}, fmt.Errorf("postgres store: checkout by token: %w", err)
	}
	return c, nil
}

func scanCheckout(row pgx.Row) (domain.Checkout, error) {
	var c domain.Checkout
	if err := row.Scan(&c.Token, &c.OrderID, &c.ReturnURL, &c.NotifyURL, &c.CreatedAt); err != nil {
		return domain.Checkout{}, err
	}
	c.CreatedAt = trunc(c.CreatedAt)
	return c, nil
}

// NotifyURLs returns the per-order notify_url of those of orderIDs that have
// one; see store.Store.
func (s *Store) NotifyURLs(ctx context.Context, orderIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(orderIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT order_id, notify_url FROM checkouts
		WHERE order_id = ANY($1) AND notify_url <> ''`, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres store: notify urls: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, u string
		if err := rows.Scan(&id, &u); err != nil {
			return nil, fmt.Errorf("postgres store: notify urls: %w", err)
		}
		out[id] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: notify urls: %w", err)
	}
	return out, nil
}
