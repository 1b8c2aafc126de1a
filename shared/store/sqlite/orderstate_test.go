package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// OrderState against OrdersByID, DeliveriesForOrders and the notify_urls
// written, on rows with every nullable column both NULL and set, for id
// counts on both sides of the statement cache.
func TestOrderStateMatchesTheThreeReads(t *testing.T) {
	s, _ := groupStore(t)
	const norders = 40
	urls := map[string]string{} // the non-empty notify_urls written
	err := s.inTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		for i := range norders {
			id := fmt.Sprintf("o-%02d", i)
			var qr, tid, paid any
			if i%2 == 0 {
				qr, tid, paid = 1000+i, fmt.Sprint("T", i), int64(1700000000000000+i)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO orders (order_id, name, price, qr_id, qr_url, status, tid,
				payment, buyer_id, pay_type, paid_at, ever_paid, created_at, updated_at)
				VALUES (?, ?, ?, ?, 'u', 'TRADE_PAID', ?, 5, 'b', 'p', ?, ?, ?, ?)`,
				id, "name "+id, i, qr, tid, paid, i%2, 1700000000000000+i, 1700000000000001+i); err != nil {
				return err
			}
			if i%3 == 0 {
				nu := ""
				if i%2 == 0 {
					nu = "https://n/" + id
					urls[id] = nu
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO checkouts (token, order_id, return_url, notify_url, created_at)
					VALUES (?, ?, '', ?, 1)`, fmt.Sprintf("tok-%s-%s", id, strings.Repeat("0", 20)), id, nu); err != nil {
					return err
				}
			}
			for j := range 3 {
				var ev any
				var next, deliv, gu, sup any
				switch (i + j) % 4 {
				case 0:
					ev, deliv = []byte(`{"x":1}`), int64(1700000000000100)
				case 1:
					ev, gu = []byte{}, int64(1700000000000200)
				case 2:
					sup = int64(1700000000000300)
				case 3:
					next = int64(1700000000000400)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (event_id, endpoint, order_id, status, event,
					attempts, last_http_status, last_error, next_attempt_at, delivered_at, given_up_at, superseded_at,
					created_at, updated_at) VALUES (?, ?, ?, 'S', ?, ?, ?, ?, ?, ?, ?, ?, 1, 2)`,
					fmt.Sprintf("E%d", (i*7+j)%11), fmt.Sprintf("https://e%d/%s", j, id), id, ev, j, 200+j, "err",
					next, deliv, gu, sup); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range norders {
		all = append(all, fmt.Sprintf("o-%02d", i), "missing-"+fmt.Sprint(i))
	}
	for _, n := range []int{1, 2, 31, 32, 33, 64, 80} {
		ids := all[:n]
		got, err := s.OrderState(t.Context(), ids)
		if err != nil {
			t.Fatal(err)
		}
		os, err1 := s.OrdersByID(t.Context(), ids)
		ds, err2 := s.DeliveriesForOrders(t.Context(), ids)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		us := map[string]string{}
		for _, id := range ids {
			if u, ok := urls[id]; ok {
				us[id] = u
			}
		}
		if !reflect.DeepEqual(got.Orders, os) {
			t.Errorf("%d ids: orders differ:\n%+v\n%+v", n, got.Orders, os)
		}
		if !reflect.DeepEqual(got.NotifyURLs, us) {
			t.Errorf("%d ids: urls differ:\n%v\n%v", n, got.NotifyURLs, us)
		}
		if !reflect.DeepEqual(got.Deliveries, ds) {
			t.Errorf("%d ids: deliveries differ:\n%+v\n%+v", n, got.Deliveries, ds)
		}
	}
}
