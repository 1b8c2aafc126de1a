package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/lag"
	"github.com/yzpay/yzpay/shared/store"
)

// timelineEntry is one line of an order's timeline: domain.TimelineEntry
// (store.OrderTimeline) as the page shows it, plus what a delivery line
// needs to offer a replay.
type timelineEntry struct {
	At         time.Time
	Kind       string // created, observation, paid, status, attempt, superseded, delivery
	Status     string
	EventID    string
	Endpoint   string // redacted
	Attempt    int
	HTTPStatus int
	Error      string
	DurationMS int64
	Excerpt    string
	Detail     string
	// Delivery entries: their state and the endpoint's reference for a
	// replay form.
	State string
	Ref   string
}

// consoleTimeline is an order's timeline for the console: the attempt log's
// entries (store.OrderTimeline: creation, each trade reading, each status
// change, each POST to a merchant with its status, duration and excerpt,
// each superseded event), then one line per delivery with its current
// state, which carries the replay button.
func (g *Gateway) consoleTimeline(ctx context.Context, o domain.Order, l string) ([]timelineEntry, error) {
	t := consoleTexts[l]
	es, err := g.deps.Store.OrderTimeline(ctx, o.OrderID)
	if err != nil {
		return nil, err
	}
	out := make([]timelineEntry, 0, len(es)+4)
	for _, e := range es {
		te := timelineEntry{At: e.At, Status: e.Status, EventID: e.EventID, Attempt: e.Attempt, HTTPStatus: e.HTTPStatus,
			Error: e.Error, DurationMS: e.DurationMS, Excerpt: e.Excerpt, Detail: e.Detail}
		if e.Endpoint != "" {
			te.Endpoint = config.RedactURL(e.Endpoint)
		}
		switch e.Kind {
		case domain.TimelineOrderCreated:
			te.Kind = "created"
			te.Detail = fmt.Sprintf("%s · ¥%s · %s %d", o.Name, yuan(o.Price), t["qrid"], o.QRID)
		case domain.TimelineStatusChanged:
			te.Kind = "status"
			if domain.IsPaid(e.Status) && o.EverPaid {
				te.Kind = "paid"
			}
		default:
			te.Kind = e.Kind // observation, attempt, superseded
		}
		// The store writes its details in English: show them in the page's.
		te.Detail = auditDetail(l, te.Detail)
		out = append(out, te)
	}
	if o.EverPaid && !o.PaidAt.IsZero() {
		for i := range out {
			if out[i].Kind == "paid" {
				out[i].Detail = fmt.Sprintf("¥%s · %s · %s %s", yuan(o.Payment), o.PayType, t["tid"], o.TID)
				break
			}
		}
	}
	ds, err := g.deps.Store.DeliveriesForOrders(ctx, []string{o.OrderID})
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		out = append(out, timelineEntry{At: d.UpdatedAt, Kind: "delivery", Status: d.Status, EventID: d.EventID,
			Endpoint: config.RedactURL(d.Endpoint), Attempt: d.Attempts, HTTPStatus: d.LastHTTPStatus,
			Error: d.LastError, State: d.State(), Ref: endpointRef(d.Endpoint)})
	}
	// Same instant: creation, reading, status, attempts, then deliveries.
	rank := map[string]int{"created": 0, "observation": 1, "paid": 2, "status": 2, "attempt": 3, "superseded": 3, "delivery": 4}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return rank[out[i].Kind] < rank[out[j].Kind]
	})
	return out, nil
}

// consoleSummary is the live strip.
type consoleSummary struct {
	PaymentsToday     int    `json:"payments_today"`
	AmountToday       string `json:"amount_today"` // yuan
	DeliveriesFailing string `json:"deliveries_failing"`
	ConsumerLag       string `json:"consumer_lag"`
	YouzanErrorRate   string `json:"youzan_error_rate"`
	At                string `json:"at"`
}

// consoleHub feeds the console's event streams. One loop per gateway (not
// per viewer) computes the live strip every summaryEvery and, every tick,
// reads the orders that open order pages watch in one query, telling those
// pages when something changed; it runs only while a page is open.
type consoleHub struct {
	g            *Gateway
	tick         time.Duration
	summaryEvery time.Duration

	mu      sync.Mutex
	subs    map[*consoleSub]struct{}
	running bool
	summary consoleSummary
	prints  map[string]string
	yz      []yzSample
}

type consoleSub struct {
	order string
	ch    chan consoleMsg
	// primed: the hub has read this page's order since it subscribed
	// (guarded by consoleHub.mu). The page was rendered before it
	// subscribed, so the first reading may already differ from what it
	// shows (a replay delivered in between); it gets one "order" event then,
	// and after that one per change.
	primed bool
}

type consoleMsg struct {
	event string
	data  []byte
}

type yzSample struct {
	at          time.Time
	total, errs float64
}

func newConsoleHub(g *Gateway) *consoleHub {
	return &consoleHub{g: g, tick: time.Second, summaryEvery: 5 * time.Second,
		subs: map[*consoleSub]struct{}{}, prints: map[string]string{},
		summary: consoleSummary{AmountToday: "0.00", DeliveriesFailing: "–", ConsumerLag: "–", YouzanErrorRate: "–"}}
}

func (h *consoleHub) lastSummary() consoleSummary {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.summary
}

func (h *consoleHub) subscribe(order string) (*consoleSub, func()) {
	s := &consoleSub{order: order, ch: make(chan consoleMsg, 8)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	if !h.running {
		h.running = true
		go h.loop()
	}
	h.mu.Unlock()
	return s, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}

func (h *consoleHub) loop() {
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var last time.Time
	for {
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running = false
			h.prints = map[string]string{}
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if time.Since(last) >= h.summaryEvery {
			last = time.Now()
			h.publishSummary(h.computeSummary(ctx))
		}
		h.checkOrders(ctx)
		cancel()
		<-t.C
	}
}

func (h *consoleHub) send(s *consoleSub, m consoleMsg) {
	select {
	case s.ch <- m:
	default: // a slow page: drop its oldest message (it re-reads on the next)
		select {
		case <-s.ch:
		default:
		}
		select {
		case s.ch <- m:
		default:
		}
	}
}

func (h *consoleHub) publishSummary(s consoleSummary) {
	b, _ := json.Marshal(s)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.summary = s
	for sub := range h.subs {
		h.send(sub, consoleMsg{"summary", b})
	}
}

func (h *consoleHub) checkOrders(ctx context.Context) {
	h.mu.Lock()
	ids := map[string]bool{}
	for s := range h.subs {
		if s.order != "" {
			ids[s.order] = true
		}
	}
	h.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	// One read, so an order and its deliveries come from one snapshot.
	st, err := h.g.deps.Store.OrderState(ctx, list)
	if err != nil {
		h.g.log.Warn("console: live orders", "err", err)
		return
	}
	prints := map[string]*strings.Builder{}
	for _, o := range st.Orders {
		b := &strings.Builder{}
		fmt.Fprintf(b, "%s|%d|", o.Status, o.UpdatedAt.UnixMicro())
		prints[o.OrderID] = b
	}
	for _, d := range st.Deliveries {
		if b := prints[d.OrderID]; b != nil {
			fmt.Fprintf(b, "%s,%s,%d,%s,%d;", d.EventID, endpointRef(d.Endpoint), d.Attempts, d.State(), d.UpdatedAt.UnixMicro())
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, b := range prints {
		p := b.String()
		old, seen := h.prints[id]
		h.prints[id] = p
		changed := seen && old != p
		data, _ := json.Marshal(map[string]string{"order_id": id})
		for s := range h.subs {
			if s.order != id {
				continue
			}
			if changed || !s.primed {
				h.send(s, consoleMsg{"order", data})
			}
			s.primed = true
		}
	}
}

func (h *consoleHub) computeSummary(ctx context.Context) consoleSummary {
	g := h.g
	now := time.Now()
	y, m, d := now.Date()
	s := consoleSummary{AmountToday: "–", DeliveriesFailing: "–", ConsumerLag: "–", YouzanErrorRate: "–",
		At: now.Format("15:04:05")}
	if n, sum, err := g.deps.Store.PaidSince(ctx, time.Date(y, m, d, 0, 0, 0, 0, time.Local)); err == nil {
		s.PaymentsToday, s.AmountToday = n, yuan(sum)
	} else {
		g.log.Warn("console: payments today", "err", err)
	}
	failing, more := 0, false
	for _, st := range []string{domain.DeliveryFailed, domain.DeliveryPending} {
		ds, err := g.deps.Store.ListDeliveries(ctx, store.DeliveryFilter{State: st, Limit: 1000})
		if err != nil {
			g.log.Warn("console: failing deliveries", "err", err)
			failing = -1
			break
		}
		more = more || len(ds) == 1000
		for _, x := range ds {
			// Pending with an attempt behind it: being retried.
			if st == domain.DeliveryFailed || x.Attempts > 0 {
				failing++
			}
		}
	}
	if failing >= 0 {
		s.DeliveriesFailing = fmt.Sprint(failing)
		if more {
			s.DeliveriesFailing += "+"
		}
	}
	if g.deps.JS != nil {
		var total uint64
		ok := true
		for _, t := range []lag.Target{lag.Tradefetcher, lag.Notifier} {
			c, err := g.deps.JS.Consumer(ctx, t.Stream, t.Consumer)
			if err != nil {
				ok = false
				break
			}
			ci, err := c.Info(ctx)
			if err != nil {
				ok = false
				break
			}
			total += ci.NumPending + uint64(ci.NumAckPending)
		}
		if ok {
			s.ConsumerLag = fmt.Sprint(total)
		}
	}
	s.YouzanErrorRate = h.youzanErrorRate(now)
	return s
}

// youzanErrorRate is the share of this process's Youzan calls that failed
// over the last 15 minutes, from yzpay_youzan_requests_total.
func (h *consoleHub) youzanErrorRate(now time.Time) string {
	var total, errs float64
	ch := make(chan prometheus.Metric, 64)
	go func() { h.g.m.YouzanCalls.Collect(ch); close(ch) }()
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil || pb.Counter == nil {
			continue
		}
		total += pb.Counter.GetValue()
		for _, l := range pb.Label {
			if l.GetName() == "result" && l.GetValue() != "ok" {
				errs += pb.Counter.GetValue()
			}
		}
	}
	h.yz = append(h.yz, yzSample{at: now, total: total, errs: errs})
	for len(h.yz) > 1 && now.Sub(h.yz[0].at) > 15*time.Minute {
		h.yz = h.yz[1:]
	}
	first := h.yz[0]
	if len(h.yz) == 1 {
		first = yzSample{at: now}
	}
	dt, de := total-first.total, errs-first.errs
	if dt <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*de/dt)
}

// consoleEvents serves /admin/events: Server-Sent Events with the live
// strip (event summary) and, with ?order=, that order's changes (event
// order; the page then fetches its live fragment).
func (g *Gateway) consoleEvents(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ session) {
	ctx := r.Context()
	sub, stop := g.con.hub.subscribe(r.URL.Query().Get("order"))
	defer stop()
	send := startEventStream(w)
	b, _ := json.Marshal(g.con.hub.lastSummary())
	if !send("retry: 3000\n\nevent: summary\ndata: " + string(b) + "\n\n") {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-sub.ch:
			if !send("event: " + m.event + "\ndata: " + string(m.data) + "\n\n") {
				return
			}
		case <-tick.C:
			if !send(": keep-alive\n\n") {
				return
			}
		}
	}
}
