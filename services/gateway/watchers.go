package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
)

// watchers fans payment-status events out to the open checkout pages. One
// core NATS subscription per gateway (not one per page) hears every event
// the tradefetcher or a close publishes, whichever replica it came from, and
// hands each to the pages watching that order through a small buffered
// channel, so a page costs its stream's goroutine and a few hundred bytes
// here. Core NATS is enough: a page that misses an event (a reconnect) reads
// the order from the store when its stream reopens, and polls otherwise.
type watchers struct {
	conn func() *nats.Conn // asked at the first page, not at start
	log  *slog.Logger

	mu    sync.Mutex
	sub   *nats.Subscription
	pages map[string]map[chan domain.PaymentEvent]struct{} // by order_id
}

func newWatchers(conn func() *nats.Conn, log *slog.Logger) *watchers {
	return &watchers{conn: conn, log: log, pages: map[string]map[chan domain.PaymentEvent]struct{}{}}
}

// watch registers a page for orderID's events. Call it before reading the
// order, so that no event falls between the read and the registration.
func (w *watchers) watch(orderID string) (<-chan domain.PaymentEvent, func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sub == nil {
		nc := w.conn()
		if nc == nil {
			return nil, nil, errors.New("checkout events: no NATS connection")
		}
		sub, err := nc.Subscribe(natsjs.StatusSubjects, w.deliver)
		if err != nil {
			return nil, nil, fmt.Errorf("checkout events: subscribe: %w", err)
		}
		// The server must know the subscription before the caller reads
		// the order, or an event published in between would be lost.
		if err := nc.Flush(); err != nil {
			_ = sub.Unsubscribe()
			return nil, nil, fmt.Errorf("checkout events: subscribe: %w", err)
		}
		w.sub = sub
	}
	ch := make(chan domain.PaymentEvent, 4) // an order has few statuses
	set := w.pages[orderID]
	if set == nil {
		set = map[chan domain.PaymentEvent]struct{}{}
		w.pages[orderID] = set
	}
	set[ch] = struct{}{}
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(set, ch)
		if len(set) == 0 && w.pages[orderID] != nil && len(w.pages[orderID]) == 0 {
			delete(w.pages, orderID)
		}
	}, nil
}

func (w *watchers) deliver(m *nats.Msg) {
	ev, err := domain.Decode(m.Data)
	if err != nil {
		w.log.Warn("checkout events: undecodable payment event", "subject", m.Subject, "err", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.pages[ev.OrderID] {
		// Never block the subscription on a slow page. Events only move an
		// order forward and the page keeps the furthest one, so dropping
		// the oldest pending event loses nothing.
		select {
		case ch <- ev:
		default:
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- ev:
			default:
			}
		}
	}
}
