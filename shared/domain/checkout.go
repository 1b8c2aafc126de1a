package domain

import "time"

// Checkout binds an order to its hosted checkout page. Token is the page's
// only key (the URL is /pay/<token>), so it is random and says nothing of
// the order. ReturnURL is where the page sends the buyer after payment ("" =
// nowhere); it is part of the order's identity, as name and price are, so a
// repeated create naming another return URL is a conflict. NotifyURL, when
// not "", receives the order's notifications instead of the configured
// endpoints; it counts for idempotent creates in the same way.
type Checkout struct {
	Token     string
	OrderID   string
	ReturnURL string
	NotifyURL string
	CreatedAt time.Time
}
