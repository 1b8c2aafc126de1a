package store

import (
	"context"
	"fmt"

	"github.com/yzpay/yzpay/shared/domain"
)

// OrderState is what the notifier reads about a batch's orders before it
// signs anything: the orders (to refuse forged events), their notify_urls
// and every delivery of their events.
type OrderState struct {
	Orders     []domain.Order    // as OrdersByID
	NotifyURLs map[string]string // as NotifyURLs
	Deliveries []domain.Delivery // as DeliveriesForOrders
}

// OrderStateReader is a Store that reads an OrderState in one round trip
// (Postgres: the three queries in one pipeline) rather than three.
type OrderStateReader interface {
	OrderState(ctx context.Context, orderIDs []string) (OrderState, error)
}

// ReadOrderState is OrdersByID, NotifyURLs and DeliveriesForOrders of
// orderIDs, in one call when s is an OrderStateReader.
func ReadOrderState(ctx context.Context, s Store, orderIDs []string) (OrderState, error) {
	if r, ok := s.(OrderStateReader); ok {
		return r.OrderState(ctx, orderIDs)
	}
	var (
		st  OrderState
		err error
	)
	if st.Orders, err = s.OrdersByID(ctx, orderIDs); err != nil {
		return OrderState{}, fmt.Errorf("load orders: %w", err)
	}
	if st.NotifyURLs, err = s.NotifyURLs(ctx, orderIDs); err != nil {
		return OrderState{}, fmt.Errorf("load notify urls: %w", err)
	}
	if st.Deliveries, err = s.DeliveriesForOrders(ctx, orderIDs); err != nil {
		return OrderState{}, fmt.Errorf("load deliveries: %w", err)
	}
	return st, nil
}
