package notifier

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
)

// Endpoint health. An endpoint that failed every attempt for
// ENDPOINT_PAUSE_AFTER is paused (the state lives in the store, so every
// replica agrees): its deliveries are parked in the store as held (pending,
// no next attempt, not counted as attempts, so their retry schedule does not
// run out) and their JetStream messages are acknowledged for it. Every
// ENDPOINT_PROBE_INTERVAL one replica claims the endpoint and sends its
// oldest pending delivery, a real push, as the probe. When a probe (or any
// attempt) succeeds, or an operator resumes it, the endpoint is active
// again and the replica that claims it republishes the held deliveries,
// oldest first, on the replay subject at ENDPOINT_DRAIN_RATE per second,
// where they are delivered like any event. Pausing never touches the other
// endpoints: a held delivery costs no request and no wait.

const (
	heldError   = "held: the endpoint is paused (ENDPOINT_PAUSE_AFTER); sent again when it resumes"
	queuedError = "queued again: the endpoint resumed"
	// drainLease is how long a replica draining an endpoint keeps the others
	// out between two chunks.
	drainLease = 30 * time.Second
)

// health is this replica's view of the store's endpoint health.
type health struct {
	mu      sync.Mutex
	paused  map[string]bool
	failing map[string]bool
	// drain: endpoints that may have held deliveries to send again.
	drain map[string]bool
	// writes counts, per endpoint, the health rows this replica took from
	// its own store writes: a row healthTick read before one of them is
	// older than the view and must not undo it (a pause undone that way let
	// every retry through to the paused endpoint until the next tick).
	writes map[string]uint64
}

func (h *health) init() {
	h.paused, h.failing, h.drain = map[string]bool{}, map[string]bool{}, map[string]bool{}
	h.writes = map[string]uint64{}
}

// snapshot is writes as they were before a read of the store.
func (h *health) snapshot() map[string]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.writes)
}

func (h *health) isPaused(url string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused[url]
}

func (n *Notifier) policy() store.HealthPolicy {
	return store.HealthPolicy{PauseAfter: n.cfg.PauseAfter, ProbeInterval: n.cfg.ProbeInterval}
}

// held records that ev is not sent to endpoint now because it is paused.
func held(ev domain.PaymentEvent, endpoint string) domain.Attempt {
	return domain.Attempt{EventID: ev.EventID, Endpoint: endpoint, OrderID: ev.OrderID, Status: ev.Status,
		Event: ev.Encode(), Held: true, Error: heldError, At: time.Now().UTC()}
}

// heldBefore is, per endpoint, the lowest position of the order's held
// deliveries: a later status of the order waits behind them, so that a
// resumed endpoint gets every status in order.
func heldBefore(ds []domain.Delivery) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, d := range ds {
		if d.State() != domain.DeliveryPending || !d.NextAttemptAt.IsZero() {
			continue
		}
		ev, err := domain.Decode(d.Event)
		if err != nil {
			continue
		}
		if out[d.OrderID] == nil {
			out[d.OrderID] = map[string]int{}
		}
		if p, ok := out[d.OrderID][d.Endpoint]; !ok || ev.Position() < p {
			out[d.OrderID][d.Endpoint] = ev.Position()
		}
	}
	return out
}

// hold tells whether j's delivery to endpoint is parked in the store (the
// attempt to record) rather than sent: the endpoint is paused, or an older
// status of the order is held for it.
func (n *Notifier) hold(j *job, endpoint string) (domain.Attempt, bool) {
	pos := j.ev.Position()
	p, behind := j.heldBefore[endpoint]
	behind = behind && p < pos
	if !behind && !n.health.isPaused(endpoint) {
		return domain.Attempt{}, false
	}
	if cur, ok := j.heldBefore[endpoint]; !ok || pos < cur {
		j.heldBefore[endpoint] = pos
	}
	if behind {
		n.health.mu.Lock()
		n.health.drain[endpoint] = true
		n.health.mu.Unlock()
	}
	return held(j.ev, endpoint), true
}

// noteOutcome feeds one attempt's result to the endpoint's health. A
// success on an endpoint known to be healthy costs no store write.
func (n *Notifier) noteOutcome(ctx context.Context, endpoint string, a domain.Attempt) {
	ok := a.Delivered
	n.health.mu.Lock()
	quiet := ok && !n.health.failing[endpoint] && !n.health.paused[endpoint]
	n.health.mu.Unlock()
	if quiet {
		return
	}
	h, changed, err := n.deps.Store.NoteEndpoint(ctx, domain.EndpointOutcome{Endpoint: endpoint, OK: ok, Error: a.Error, At: a.At}, n.policy())
	if err != nil {
		n.log.Error("endpoint health not recorded", "endpoint", config.RedactURL(endpoint), "err", err)
		return
	}
	n.applyHealth(h, changed, nil)
}

// applyHealth takes a stored health row into this replica's view; changed
// says this replica made the change (it logs it). read is nil for a row this
// replica just wrote, else the writes snapshot taken before the row was
// read: the row is dropped, false, if the view took a write since.
func (n *Notifier) applyHealth(h domain.EndpointHealth, changed bool, read map[string]uint64) bool {
	paused := h.State == domain.EndpointPaused
	n.health.mu.Lock()
	if read == nil {
		n.health.writes[h.Endpoint]++
	} else if read[h.Endpoint] != n.health.writes[h.Endpoint] {
		n.health.mu.Unlock()
		return false
	}
	was := n.health.paused[h.Endpoint]
	n.health.paused[h.Endpoint] = paused
	n.health.failing[h.Endpoint] = !h.FailingSince.IsZero()
	if was && !paused {
		n.health.drain[h.Endpoint] = true
	}
	n.health.mu.Unlock()
	v := 0.0
	if paused {
		v = 1
	}
	n.m.EndpointPaused.WithLabelValues(config.RedactURL(h.Endpoint)).Set(v)
	switch {
	case changed && paused:
		n.log.Warn("endpoint paused: it failed every attempt since failing_since; its deliveries are held and the oldest is sent as a probe every ENDPOINT_PROBE_INTERVAL",
			"endpoint", config.RedactURL(h.Endpoint), "failing_since", h.FailingSince, "pause_after", n.cfg.PauseAfter,
			"probe_interval", n.cfg.ProbeInterval, "last_error", h.LastError)
	case changed && !paused:
		n.log.Warn("endpoint resumed: its held deliveries are sent again, oldest first",
			"endpoint", config.RedactURL(h.Endpoint), "drain_rate", n.cfg.DrainRate)
	case was != paused:
		n.log.Info("endpoint health changed on another replica or by an operator",
			"endpoint", config.RedactURL(h.Endpoint), "state", h.State)
	}
	return true
}

// runHealth refreshes the view from the store, probes paused endpoints and
// drains resumed ones until ctx ends.
func (n *Notifier) runHealth(ctx context.Context) {
	tick := min(time.Second, n.cfg.ProbeInterval)
	for _, ep := range n.endpoints.Load().list {
		n.m.EndpointPaused.WithLabelValues(config.RedactURL(ep.URL)).Set(0)
		// A drain cut short by a restart goes on.
		n.health.mu.Lock()
		n.health.drain[ep.URL] = true
		n.health.mu.Unlock()
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		n.healthTick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Notifier) healthTick(ctx context.Context) {
	read := n.health.snapshot()
	rows, err := n.deps.Store.ListEndpointHealth(ctx)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("endpoint health not read", "err", err)
		}
		return
	}
	byURL := map[string]domain.EndpointHealth{}
	for _, h := range rows {
		byURL[h.Endpoint] = h
	}
	for _, ep := range n.endpoints.Load().list {
		h, ok := byURL[ep.URL]
		if !ok {
			continue
		}
		if !n.applyHealth(h, false, read) {
			continue // stale: the next tick reads it again
		}
		now := time.Now()
		switch {
		case h.State == domain.EndpointPaused:
			if claimed, err := n.deps.Store.ClaimEndpoint(ctx, ep.URL, domain.EndpointPaused, now, now.Add(n.cfg.ProbeInterval)); err == nil && claimed {
				n.probe(ctx, ep)
			}
		default:
			n.health.mu.Lock()
			due := n.health.drain[ep.URL]
			n.health.mu.Unlock()
			if due {
				n.drainChunk(ctx, ep)
			}
		}
	}
}

// probe sends the endpoint's oldest pending delivery. A failure keeps it
// held (never given up while paused); a success resumes the endpoint.
func (n *Notifier) probe(ctx context.Context, ep *endpoint) {
	ds, err := n.deps.Store.PendingDeliveries(ctx, ep.URL, false, 1)
	if err != nil || len(ds) == 0 {
		if err != nil {
			n.log.Error("endpoint probe: store unavailable", "endpoint", config.RedactURL(ep.URL), "err", err)
		}
		return
	}
	d := ds[0]
	ev, err := domain.Decode(d.Event)
	if err != nil {
		return
	}
	start := time.Now()
	attempt := d.Attempts + 1
	ans, err := n.send(ctx, n.client, ep.URL, build(ev, ep, start), ev.EventID, attempt)
	status := ans.status
	// A probe is a real attempt: the attempt log keeps it like any other.
	a := domain.Attempt{EventID: ev.EventID, Endpoint: ep.URL, OrderID: ev.OrderID, Status: ev.Status,
		Event: ev.Encode(), HTTPStatus: status, At: start.UTC(), ErrorClass: ans.class, Duration: time.Since(start),
		Excerpt: store.TruncateExcerpt(redactSecrets(ans.excerpt, ep))}
	n.m.DeliveryAttempt.Observe(float64(attempt))
	if err == nil {
		a.Delivered = true
		n.m.Deliveries.WithLabelValues("delivered").Inc()
		n.log.Info("merchant notified (probe of a paused endpoint)", "event_id", ev.EventID, "order_id", ev.OrderID,
			"status", ev.Status, "endpoint", config.RedactURL(ep.URL), "attempt", attempt, "http_status", status)
	} else {
		a.Error = err.Error()
		n.m.Deliveries.WithLabelValues("failed").Inc()
		n.log.Info("probe of a paused endpoint failed; it stays paused", "event_id", ev.EventID,
			"endpoint", config.RedactURL(ep.URL), "attempt", attempt, "next_probe_in", n.cfg.ProbeInterval, "err", a.Error)
	}
	if _, err := n.deps.Store.RecordAttempts(ctx, []domain.Attempt{a}); err != nil {
		n.log.Error("endpoint probe not recorded", "endpoint", config.RedactURL(ep.URL), "err", err)
		return
	}
	n.noteOutcome(ctx, ep.URL, a)
}

// drainChunk republishes up to DrainRate held deliveries of an active
// endpoint, oldest first, paced at DrainRate per second, when this replica
// claims the endpoint.
func (n *Notifier) drainChunk(ctx context.Context, ep *endpoint) {
	now := time.Now()
	claimed, err := n.deps.Store.ClaimEndpoint(ctx, ep.URL, domain.EndpointActive, now, now.Add(drainLease))
	if err != nil || !claimed {
		return
	}
	defer func() {
		// Let the next chunk (this replica's or another's) start at once.
		_, _ = n.deps.Store.ClaimEndpoint(context.WithoutCancel(ctx), ep.URL, domain.EndpointActive, time.Now().Add(drainLease), time.Now())
	}()
	ds, err := n.deps.Store.PendingDeliveries(ctx, ep.URL, true, n.cfg.DrainRate)
	if err != nil {
		n.log.Error("endpoint drain: store unavailable", "endpoint", config.RedactURL(ep.URL), "err", err)
		return
	}
	if len(ds) == 0 {
		n.health.mu.Lock()
		delete(n.health.drain, ep.URL)
		n.health.mu.Unlock()
		return
	}
	gap := time.Second / time.Duration(n.cfg.DrainRate)
	for i, d := range ds {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(gap):
			}
		}
		if n.health.isPaused(ep.URL) {
			return
		}
		ev, err := domain.Decode(d.Event)
		if err != nil {
			continue
		}
		// Marked first, published second, and unmarked if the publish
		// fails: a delivery held again meanwhile (a replica that has not yet
		// seen the resume) is simply drained again.
		mark := func(next time.Time, why string) error {
			_, err := n.deps.Store.RecordAttempts(ctx, []domain.Attempt{{EventID: d.EventID, Endpoint: d.Endpoint,
				OrderID: d.OrderID, Status: d.Status, Event: d.Event, Held: true, Error: why, NextAttemptAt: next, At: time.Now().UTC()}})
			return err
		}
		if err := mark(time.Now().UTC(), queuedError); err != nil {
			n.log.Error("endpoint drain: store unavailable", "endpoint", config.RedactURL(ep.URL), "err", err)
			return
		}
		msg := nats.NewMsg(natsjs.ReplaySubject(ev.Status))
		msg.Data = ev.Encode()
		id := ev.EventID + ":resume:" + strconv.FormatInt(time.Now().UnixNano(), 10)
		if _, err := n.deps.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
			n.log.Error("endpoint drain: publish failed; tried again on the next tick", "endpoint", config.RedactURL(ep.URL), "err", err)
			_ = mark(time.Time{}, heldError)
			return
		}
	}
}
