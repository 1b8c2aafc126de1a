package sqlite_test

import (
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
)

// TestHeldMarkLeavesDeliveredAlone: a resumed endpoint's drain marks a held
// delivery "queued again"; if that delivery was delivered meanwhile, it
// stays delivered, with no error and no next attempt that would make it read
// as pending.
func TestHeldMarkLeavesDeliveredAlone(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	base := domain.Attempt{EventID: "E1:TRADE_SUCCESS", Endpoint: "http://m.example/notify", OrderID: "o-1",
		Status: domain.StatusTradeSuccess, Event: []byte(`{}`)}
	ok := base
	ok.Delivered, ok.HTTPStatus, ok.At = true, 200, time.Now().UTC()
	queued := base
	queued.Held, queued.Error, queued.NextAttemptAt, queued.At = true, "queued again: the endpoint resumed", time.Now().UTC(), time.Now().UTC()
	ds, err := s.RecordAttempts(ctx, []domain.Attempt{ok, queued})
	if err != nil {
		t.Fatal(err)
	}
	d := ds[1]
	if d.State() != domain.DeliveryDelivered || d.LastError != "" || !d.NextAttemptAt.IsZero() || d.Attempts != 1 {
		t.Errorf("after a held mark on a delivered delivery: state %s, last error %q, next attempt %v, attempts %d; want delivered, no error, none, 1",
			d.State(), d.LastError, d.NextAttemptAt, d.Attempts)
	}
}
