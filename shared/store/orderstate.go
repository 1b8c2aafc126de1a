package store

import "github.com/yzpay/yzpay/shared/domain"

// OrderState is what the notifier reads about a batch's orders before it
// signs anything: the orders (to refuse forged events), their notify_urls
// and every delivery of their events.
type OrderState struct {
	Orders     []domain.Order    // as OrdersByID
	NotifyURLs map[string]string // of the orders that have one (others, and unknown ones, are absent)
	Deliveries []domain.Delivery // as DeliveriesForOrders
}
