package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/yzpay/yzpay/shared/domain"
)

const (
	orderExistsSQL  = `SELECT 1 FROM orders WHERE order_id = ?`
	checkoutBindSQL = `INSERT INTO checkouts (token, order_id, return_url, notify_url, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING
			RETURNING token, order_id, return_url, notify_url, created_at`
	checkoutByOrderSQL = `SELECT token, order_id, return_url, notify_url, created_at
			FROM checkouts WHERE order_id = ?`
	checkoutByTokenSQL = `SELECT token, order_id, return_url, notify_url, created_at
		FROM checkouts WHERE token = ?`
)

// BindCheckout stores c unless the order has a checkout page already; see
// store.Store.
func (s *Store) BindCheckout(ctx context.Context, c domain.Checkout) (domain.Checkout, error) {
	var got domain.Checkout
	err := s.inTxWith(ctx, []string{orderExistsSQL, checkoutBindSQL, checkoutByOrderSQL}, func(ctx context.Context, _ *sql.Tx, st []*sql.Stmt) error {
		var exists int
		if err := st[0].QueryRowContext(ctx, c.OrderID).Scan(&exists); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return domain.ErrNotFound
			}
			return err
		}
		var err error
		got, err = bindCheckout(ctx, st[1], st[2], c)
		return err
	})
	if err != nil {
		return domain.Checkout{}, fmt.Errorf("sqlite store: bind checkout of %q: %w", c.OrderID, err)
	}
	return got, nil
}

// bindCheckout is BindCheckout's work inside a transaction once the order is
// known to exist, on its statements checkoutBindSQL and checkoutByOrderSQL.
// The transaction holds the write lock, so the page found when the insert
// did nothing is the one that stays.
func bindCheckout(ctx context.Context, bind, byOrder *sql.Stmt, c domain.Checkout) (domain.Checkout, error) {
	got, err := scanCheckout(bind.QueryRowContext(ctx, c.Token, c.OrderID, c.ReturnURL, c.NotifyURL, toMicro(now())))
	if errors.Is(err, sql.ErrNoRows) { // the order has a page already
		got, err = scanCheckout(byOrder.QueryRowContext(ctx, c.OrderID))
	}
	return got, err
}

// AttachQRAndCheckout is AttachQR then BindCheckout in one transaction: one
// commit instead of two per created order. It stores exactly what the two
// calls would, and what a crash leaves is what it was before the call, or
// both (never a QR without its page, which the two calls could leave: the
// merchant's retry then bound the page).
func (s *Store) AttachQRAndCheckout(ctx context.Context, qr domain.QRCode, c domain.Checkout) (domain.Order, domain.Checkout, error) {
	if qr.ID <= 0 {
		return domain.Order{}, domain.Checkout{}, fmt.Errorf("sqlite store: attach QR to %q: invalid qr_id %d", c.OrderID, qr.ID)
	}
	var (
		o   domain.Order
		got domain.Checkout
	)
	err := s.inTxWith(ctx, []string{attachQRSQL, orderByIDSQL, checkoutBindSQL, checkoutByOrderSQL}, func(ctx context.Context, _ *sql.Tx, st []*sql.Stmt) error {
		var err error
		if o, err = attachQR(ctx, st[0], st[1], c.OrderID, qr); err != nil {
			return err // domain.ErrNotFound for a missing order, as BindCheckout's
		}
		got, err = bindCheckout(ctx, st[2], st[3], c)
		return err
	})
	if err != nil {
		return domain.Order{}, domain.Checkout{}, fmt.Errorf("sqlite store: attach QR and checkout to %q: %w", c.OrderID, err)
	}
	return o, got, nil
}

// CheckoutByToken returns the checkout page's binding or domain.ErrNotFound.
func (s *Store) CheckoutByToken(ctx context.Context, token string) (domain.Checkout, error) {
	row, err := s.readRow(ctx, checkoutByTokenSQL, token)
	var c domain.Checkout
	if err == nil {
		c, err = scanCheckout(row)
	}
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
