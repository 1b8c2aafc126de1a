package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
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

// AttachQRAndCheckout is AttachQR then BindCheckout, atomically, in one
// round trip: a pgx batch is sent with one Sync, so the server runs it as one
// implicit transaction, committed after the last statement (and rolled back
// whole if one fails, e.g. the QR is bound to another order). Each
// statement reads with its own snapshot, as in the separate calls: the
// UPDATE waits for a concurrent attacher and then leaves its QR, the INSERT
// waits for a concurrent binder and then does nothing, and the SELECTs that
// follow see whichever won.
func (s *Store) AttachQRAndCheckout(ctx context.Context, qr domain.QRCode, c domain.Checkout) (domain.Order, domain.Checkout, error) {
	fail := func(err error) (domain.Order, domain.Checkout, error) {
		return domain.Order{}, domain.Checkout{}, fmt.Errorf("postgres store: attach QR and checkout to %q: %w", c.OrderID, err)
	}
	if qr.ID <= 0 {
		return fail(fmt.Errorf("invalid qr_id %d", qr.ID))
	}
	at := now()
	b := &pgx.Batch{}
	b.Queue(`UPDATE orders SET qr_id = $2, qr_url = $3, claim_token = NULL, claim_until = NULL, updated_at = $4
		WHERE order_id = $1 AND qr_id IS NULL`, c.OrderID, qr.ID, qr.URL, at)
	b.Queue(`INSERT INTO checkouts (token, order_id, return_url, notify_url, created_at)
		SELECT $1, $2, $3, $5, $4 WHERE EXISTS (SELECT 1 FROM orders WHERE order_id = $2)
		ON CONFLICT (order_id) DO NOTHING`, c.Token, c.OrderID, c.ReturnURL, at, c.NotifyURL)
	b.Queue(`SELECT `+orderCols+` FROM orders WHERE order_id = $1`, c.OrderID)
	b.Queue(`SELECT token, order_id, return_url, notify_url, created_at FROM checkouts WHERE order_id = $1`, c.OrderID)
	br := s.pool.SendBatch(ctx, b)
	o, got, err := func() (domain.Order, domain.Checkout, error) {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return domain.Order{}, domain.Checkout{}, err
			}
		}
		o, err := scanOrder(br.QueryRow())
		if errors.Is(err, pgx.ErrNoRows) {
			err = domain.ErrNotFound // no such order (nothing was written)
		}
		if err != nil {
			return domain.Order{}, domain.Checkout{}, err
		}
		got, err := scanCheckout(br.QueryRow())
		return o, got, err
	}()
	// Close reads the end of the implicit transaction: a failed commit
	// shows only here.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	return o, got, nil
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

// OrderState reads OrdersByID and DeliveriesForOrders of orderIDs, and their
// notify_urls, with one round trip: the three queries go out as one batch. They
// only read, so the batch's implicit transaction changes nothing; each still
// sees what was committed when it ran, as the three separate calls did.
func (s *Store) OrderState(ctx context.Context, orderIDs []string) (store.OrderState, error) {
	st := store.OrderState{NotifyURLs: map[string]string{}}
	if len(orderIDs) == 0 {
		return st, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+orderCols+` FROM orders WHERE order_id = ANY($1)`, orderIDs)
	b.Queue(`SELECT order_id, notify_url FROM checkouts WHERE order_id = ANY($1) AND notify_url <> ''`, orderIDs)
	b.Queue(`SELECT `+deliveryCols+` FROM deliveries WHERE order_id = ANY($1) ORDER BY event_id, endpoint`, orderIDs)
	br := s.pool.SendBatch(ctx, b)
	err := func() error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		if st.Orders, err = pgx.AppendRows(st.Orders, rows, rowToOrder); err != nil {
			return err
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		var id, u string
		if _, err = pgx.ForEachRow(rows, []any{&id, &u}, func() error {
			st.NotifyURLs[id] = u
			return nil
		}); err != nil {
			return err
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		st.Deliveries, err = pgx.AppendRows(st.Deliveries, rows, rowToDelivery)
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return store.OrderState{}, fmt.Errorf("postgres store: order state: %w", err)
	}
	return st, nil
}
