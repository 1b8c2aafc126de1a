package notifier

import (
	"cmp"
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

// screen keeps the jobs whose event matches the store (orders: the stored
// orders of the jobs) and terminates the others: anything that can publish
// on yzpay.payment.> could otherwise have the notifier sign a payment that
// never happened.
func (n *Notifier) screen(jobs []*job, orders []domain.Order) []*job {
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
	return kept
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
// It also keeps each order's statuses in the order JetStream delivered them:
// a batch waiting for one of its orders (behind a slow batch, say one
// retrying a failing endpoint) holds its place in the queues of its other
// orders, so a later batch cannot overtake it there and push a newer status
// first, which would make the older one superseded, never sent, at healthy
// endpoints too.
type orderLocks struct {
	mu     sync.Mutex
	queues map[string][]*orderTurn
}

// orderTurn is one batch's place in the queues of its orders.
type orderTurn struct {
	// seq orders the batches: the JetStream delivery sequence of the
	// batch's first message, which grows in the order natsjs.Consume formed
	// the batches. Every queue is in seq order (the batches already running
	// aside), so waiting batches cannot form a cycle.
	seq uint64
	// blocked counts the queues where the batch is not yet first.
	blocked int
	running bool
	ready   chan struct{}
}

// orderPlace is a batch's place in the queues, taken by join.
type orderPlace struct {
	l   *orderLocks
	t   *orderTurn
	ids []string
}

// join takes the batch seq's place in the queue of every order in ids
// without waiting: natsjs.Consume calls it (through admit) in the order it
// formed the batches, before a batch gets its own goroutine, so that a later
// batch cannot reach the queues first and overtake it.
func (l *orderLocks) join(seq uint64, ids []string) orderPlace {
	t := &orderTurn{seq: seq, ready: make(chan struct{})}
	ids = slices.Clone(ids)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.queues == nil {
		l.queues = map[string][]*orderTurn{}
	}
	for _, id := range ids {
		q := l.queues[id]
		// After the running batch and every earlier or equal seq.
		at := len(q)
		for i, o := range q {
			if !o.running && o.seq > seq {
				at = i
				break
			}
		}
		if at == 0 {
			if len(q) > 0 {
				q[0].blocked++
			}
		} else {
			t.blocked++
		}
		l.queues[id] = slices.Insert(q, at, t)
	}
	if t.blocked == 0 {
		t.running = true
		close(t.ready)
	}
	return orderPlace{l: l, t: t, ids: ids}
}

// wait blocks until the batch is first in every queue it joined, and
// returns its release, which must be called exactly once.
func (p orderPlace) wait() (unlock func()) {
	l, t, ids := p.l, p.t, p.ids
	<-t.ready
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, id := range ids {
			q := l.queues[id][1:] // t is first: it ran
			if len(q) == 0 {
				delete(l.queues, id)
				continue
			}
			l.queues[id] = q
			if next := q[0]; !next.running {
				if next.blocked--; next.blocked == 0 {
					next.running = true
					close(next.ready)
				}
			}
		}
	}
}
