// Package replay lets an operator deliver an event again after its merchant
// endpoint gave up (or on demand): the delivery is reopened in the store and
// the event is handed back to the notifier through JetStream, keeping its
// event id, so the merchant's deduplication still works and the attempt count
// goes on.
package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
)

// ErrNothingToReplay: the event has no delivery (for that endpoint).
var ErrNothingToReplay = errors.New("no delivery recorded for that event and endpoint")

// ErrSuperseded: every delivery asked for is superseded (the endpoint
// already has a newer status of the order); replaying it would show the
// merchant the order going back, so it is refused.
var ErrSuperseded = errors.New("the endpoint already has a newer status of this order; a superseded delivery is not replayed")

// Replayer reopens deliveries and republishes their event.
type Replayer struct {
	Store store.Store
	JS    jetstream.JetStream
}

// Replay reopens the event's deliveries (only endpoint's when not "") and
// publishes the event to the notifier's replay subject.
func (r Replayer) Replay(ctx context.Context, eventID, endpoint string) ([]domain.Delivery, error) {
	ds, err := r.Store.DeliveriesForEvent(ctx, eventID)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", eventID, err)
	}
	var reopened []domain.Delivery
	var event []byte
	var status string
	superseded := 0
	for _, d := range ds {
		if endpoint != "" && d.Endpoint != endpoint {
			continue
		}
		if d.State() == domain.DeliverySuperseded {
			superseded++
			continue
		}
		nd, err := r.Store.ReopenDelivery(ctx, d.EventID, d.Endpoint)
		if err != nil {
			return reopened, fmt.Errorf("replay %s: reopen %s: %w", eventID, d.Endpoint, err)
		}
		reopened = append(reopened, nd)
		event, status = d.Event, d.Status
	}
	if len(reopened) == 0 && superseded > 0 {
		return nil, ErrSuperseded
	}
	if len(reopened) == 0 {
		return nil, ErrNothingToReplay
	}
	e, err := domain.Decode(event)
	if err != nil {
		return reopened, fmt.Errorf("replay %s: stored event: %w", eventID, err)
	}
	msg := nats.NewMsg(natsjs.ReplaySubject(status))
	msg.Data = e.Encode()
	id := eventID + ":replay:" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := r.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		// Nothing will deliver the reopened rows: mark them given up again,
		// so they stay visible to `--all-failed` and the admin API.
		back := make([]domain.Attempt, 0, len(reopened))
		for _, d := range reopened {
			back = append(back, domain.Attempt{EventID: d.EventID, Endpoint: d.Endpoint, OrderID: d.OrderID,
				Status: d.Status, Event: d.Event, Error: "replay could not be queued: " + err.Error(), GiveUp: true, At: time.Now()})
		}
		if _, rerr := r.Store.RecordAttempts(context.WithoutCancel(ctx), back); rerr != nil {
			return reopened, fmt.Errorf("replay %s: publish: %w (and re-marking failed: %v)", eventID, err, rerr)
		}
		return nil, fmt.Errorf("replay %s: publish: %w", eventID, err)
	}
	return reopened, nil
}

// AllFailed replays every given-up delivery (only endpoint's when not "")
// once. A replayed delivery that fails again is given up again after one
// attempt and would show up in the next listing; it is not replayed twice
// in one call.
func (r Replayer) AllFailed(ctx context.Context, endpoint string) (int, error) {
	type key struct{ event, endpoint string }
	done := map[key]bool{}
	for {
		ds, err := r.Store.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryFailed, Endpoint: endpoint, Limit: 500})
		if err != nil {
			return len(done), err
		}
		fresh := 0
		for _, d := range ds {
			k := key{d.EventID, d.Endpoint}
			if done[k] {
				continue
			}
			if _, err := r.Replay(ctx, d.EventID, d.Endpoint); err != nil {
				return len(done), err
			}
			done[k] = true
			fresh++
		}
		if fresh == 0 {
			return len(done), nil
		}
	}
}
