package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/store"
)

// The rows of orderStateSQL: column 0 says which query a row answers.
const (
	stateOrder    = 0 // the other columns are orderCols
	stateNotify   = 1 // order_id, notify_url, then NULLs
	stateDelivery = 2 // deliveryCols
)

// orderStateSQL is OrdersByID, the notify_urls and DeliveriesForOrders of n ids
// (?1 … ?n) as one statement. Each autocommit statement on a reader is a
// read transaction of its own: SQLite takes the WAL read lock, and after any
// commit since the connection's last read drops its page cache and reads the
// pages again; database/sql adds a Rows (and a goroutine watching its
// context) per query. One statement pays each of these once instead of
// three times, and reads one snapshot. The branches are the three queries'
// own, each on its index; the deliveries are sorted by the caller, since a
// compound's ORDER BY cannot apply to one branch.
func orderStateSQL(n int) string {
	var in strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			in.WriteByte(',')
		}
		in.WriteByte('?')
		in.WriteString(strconv.Itoa(i))
	}
	ids := in.String()
	return `SELECT ` + strconv.Itoa(stateOrder) + `, ` + orderCols + ` FROM orders WHERE order_id IN (` + ids + `)
	UNION ALL
	SELECT ` + strconv.Itoa(stateNotify) + `, order_id, notify_url` + strings.Repeat(", NULL", 12) + `
		FROM checkouts WHERE notify_url <> '' AND order_id IN (` + ids + `)
	UNION ALL
	SELECT ` + strconv.Itoa(stateDelivery) + `, ` + deliveryCols + ` FROM deliveries WHERE order_id IN (` + ids + `)`
}

// orderStateTexts holds orderStateSQL(n) for the lists whose statements the
// reader cache keeps, so that finding the statement builds no text.
var orderStateTexts = func() []string {
	out := make([]string, inListCached+1)
	for n := 1; n <= inListCached; n++ {
		out[n] = orderStateSQL(n)
	}
	return out
}()

// OrderState reads what OrdersByID and DeliveriesForOrders return for
// orderIDs, and their notify_urls, in one statement per chunk of ids (one for the
// notifier's batches); see orderStateSQL.
func (s *Store) OrderState(ctx context.Context, orderIDs []string) (store.OrderState, error) {
	st := store.OrderState{NotifyURLs: map[string]string{}}
	for chunk := range slices.Chunk(orderIDs, inChunk) {
		if err := s.orderStateChunk(ctx, chunk, &st); err != nil {
			return store.OrderState{}, fmt.Errorf("sqlite store: order state: %w", err)
		}
	}
	return st, nil
}

func (s *Store) orderStateChunk(ctx context.Context, ids []string, st *store.OrderState) error {
	q := ""
	if len(ids) < len(orderStateTexts) {
		q = orderStateTexts[len(ids)]
	} else {
		q = orderStateSQL(len(ids))
	}
	rows, err := s.queryIn(ctx, q, len(ids), anys(ids)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		kind   int
		skip   [14]any
		first  = make([]any, 15)
		row    = kindRow{rows: rows}
		nDeliv = len(st.Deliveries)
	)
	first[0] = &kind
	for i := range skip {
		skip[i] = skipValue{}
		first[i+1] = skipValue{}
	}
	for rows.Next() {
		// Scan may be called again on the same row: once for its kind, then
		// with the destinations of its query, so every value is converted
		// exactly as the query's own method converts it.
		if err := rows.Scan(first...); err != nil {
			return err
		}
		switch kind {
		case stateOrder:
			o, err := scanOrder(row)
			if err != nil {
				return err
			}
			st.Orders = append(st.Orders, o)
		case stateNotify:
			var id, u string
			if err := row.Scan(append([]any{&id, &u}, skip[2:]...)...); err != nil {
				return err
			}
			st.NotifyURLs[id] = u
		case stateDelivery:
			d, err := scanDelivery(row)
			if err != nil {
				return err
			}
			st.Deliveries = append(st.Deliveries, d)
		default:
			return fmt.Errorf("unknown row kind %d", kind)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// DeliveriesForOrders' ORDER BY event_id, endpoint (BINARY collation:
	// bytewise, as Go compares strings), per chunk as it does.
	slices.SortFunc(st.Deliveries[nDeliv:], func(a, b domain.Delivery) int {
		if c := strings.Compare(a.EventID, b.EventID); c != 0 {
			return c
		}
		return strings.Compare(a.Endpoint, b.Endpoint)
	})
	return nil
}

// kindRow scans a row of orderStateSQL past its kind column, so that
// scanOrder and scanDelivery read it as a row of their own query.
type kindRow struct{ rows *sql.Rows }

func (r kindRow) Scan(dest ...any) error {
	return r.rows.Scan(append([]any{skipValue{}}, dest...)...)
}

// skipValue is a Scan destination that discards its value without
// converting it.
type skipValue struct{}

func (skipValue) Scan(any) error { return nil }
