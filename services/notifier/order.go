package notifier

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
)

// This file decides, before anything is signed, whether an event is sent,
// superseded or refused as forged (docs/security.md).

// Reasons a forged event is refused, the label of yzpay_forged_events_total.
const (
	forgedUnknownOrder = "unknown_order"
	forgedMismatch     = "mismatch"
)

// screen keeps the jobs whose event matches the store and terminates the
// others: anything that can publish on yzpay.payment.> could otherwise have
// the notifier sign a payment that never happened.
func (n *Notifier) screen(ctx context.Context, jobs []*job) ([]*job, error) {
	ids := distinctOrders(jobs)
	orders, err := n.deps.Store.OrdersByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load orders: %w", err)
	}
	byID := make(map[string]domain.Order, len(orders))
	for _, o := range orders {
		byID[o.OrderID] = o
	}
	kept := jobs[:0]
	for _, j := range jobs {
		o, ok := byID[j.ev.OrderID]
		reason, why := "", ""
		switch {
		case !ok:
			reason, why = forgedUnknownOrder, "no such order"
		default:
			if err := domain.VerifyEvent(j.ev, o); err != nil {
				reason, why = forgedMismatch, err.Error()
			}
		}
		if reason == "" {
			kept = append(kept, j)
			continue
		}
		n.m.ForgedEvents.WithLabelValues(reason).Inc()
		n.log.Warn("event does not match the store; refused, not signed (something other than yzpay published it)",
			"subject", j.msg.Subject(), "event_id", j.ev.EventID, "order_id", j.ev.OrderID, "status", j.ev.Status,
			"payment", j.ev.Payment, "reason", reason, "detail", why)
		_ = j.msg.Term()
	}
	return kept, nil
}

func distinctOrders(jobs []*job) []string {
	seen := map[string]bool{}
	var ids []string
	for _, j := range jobs {
		if !seen[j.ev.OrderID] {
			seen[j.ev.OrderID] = true
			ids = append(ids, j.ev.OrderID)
		}
	}
	return ids
}

// newest is, for one order, the newest status each endpoint has answered
// 2xx for.
type newest map[string]delivered

type delivered struct {
	position int
	status   string
	eventID  string
}

// newestDelivered builds newest per order from stored deliveries.
func newestDelivered(ds []domain.Delivery) map[string]newest {
	out := map[string]newest{}
	for _, d := range ds {
		if d.State() != domain.DeliveryDelivered {
			continue
		}
		pos := domain.Position(d.Status, strings.HasPrefix(d.EventID, "order:"))
		if ev, err := domain.Decode(d.Event); err == nil {
			pos = ev.Position()
		}
		if out[d.OrderID] == nil {
			out[d.OrderID] = newest{}
		}
		out[d.OrderID].note(d.Endpoint, delivered{pos, d.Status, d.EventID})
	}
	return out
}

func (nw newest) note(endpoint string, d delivered) {
	if cur, ok := nw[endpoint]; !ok || d.position > cur.position {
		nw[endpoint] = d
	}
}

// supersededBy reports the newer delivered status that makes ev too old for
// endpoint. Equal positions (TRADE_PAID and PAID) are both sent.
func (nw newest) supersededBy(endpoint string, ev domain.PaymentEvent) (delivered, bool) {
	d, ok := nw[endpoint]
	return d, ok && d.position > ev.Position()
}

// byOrder groups jobs per order, each group oldest status first, so that
// within a batch an order's statuses go out in order and a group runs on one
// goroutine; other orders proceed in parallel.
func byOrder(jobs []*job) [][]*job {
	idx := map[string]int{}
	var groups [][]*job
	for _, j := range jobs {
		i, ok := idx[j.ev.OrderID]
		if !ok {
			i = len(groups)
			idx[j.ev.OrderID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], j)
	}
	for _, g := range groups {
		slices.SortStableFunc(g, func(a, b *job) int { return cmp.Compare(a.ev.Position(), b.ev.Position()) })
	}
	return groups
}

// supersede records that ev is not sent to endpoint: the merchant there
// already has a newer status of the order, and an older one arriving after
// it would read as the order going back.
func (n *Notifier) supersede(ev domain.PaymentEvent, endpoint string, newer delivered) domain.Attempt {
	n.m.Deliveries.WithLabelValues(domain.DeliverySuperseded).Inc()
	n.log.Info("older status not sent: the endpoint already has a newer one", "event_id", ev.EventID,
		"order_id", ev.OrderID, "status", ev.Status, "endpoint", config.RedactURL(endpoint),
		"newer_status", newer.status, "newer_event_id", newer.eventID)
	return domain.Attempt{
		EventID: ev.EventID, Endpoint: endpoint, OrderID: ev.OrderID, Status: ev.Status, Event: ev.Encode(),
		Superseded: true, At: time.Now().UTC(),
		Error: "superseded: the endpoint already has " + newer.status + " (event " + newer.eventID + ")",
	}
}

// orderLocks serialises, within one process, the handling of batches that
// share an order: concurrent batches (natsjs.Consume runs several) could
// otherwise both read "nothing newer delivered" and post in either order.
type orderLocks struct {
	mu    sync.Mutex
	locks map[string]*orderLock
}

type orderLock struct {
	mu    sync.Mutex
	users int
}

// lock takes the locks of ids (sorted, so two batches cannot deadlock) and
// returns their release.
func (l *orderLocks) lock(ids []string) (unlock func()) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	held := make([]*orderLock, 0, len(ids))
	for _, id := range ids {
		l.mu.Lock()
		if l.locks == nil {
			l.locks = map[string]*orderLock{}
		}
		ol := l.locks[id]
		if ol == nil {
			ol = &orderLock{}
			l.locks[id] = ol
		}
		ol.users++
		l.mu.Unlock()
		ol.mu.Lock()
		held = append(held, ol)
	}
	return func() {
		for i, ol := range held {
			ol.mu.Unlock()
			l.mu.Lock()
			if ol.users--; ol.users == 0 {
				delete(l.locks, ids[i])
			}
			l.mu.Unlock()
		}
	}
}
