package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/store"
)

type deliveryJSON struct {
	EventID        string `json:"event_id"`
	Endpoint       string `json:"endpoint"`
	OrderID        string `json:"order_id"`
	Status         string `json:"status"`
	State          string `json:"state"`
	Attempts       int    `json:"attempts"`
	LastHTTPStatus int    `json:"last_http_status"`
	LastError      string `json:"last_error"`
	NextAttemptAt  string `json:"next_attempt_at"`
	DeliveredAt    string `json:"delivered_at"`
	GivenUpAt      string `json:"given_up_at"`
	SupersededAt   string `json:"superseded_at"`
	UpdatedAt      string `json:"updated_at"`
}

func toDeliveryJSON(d domain.Delivery) deliveryJSON {
	return deliveryJSON{
		EventID: d.EventID, Endpoint: config.RedactURL(d.Endpoint), OrderID: d.OrderID, Status: d.Status, State: d.State(),
		Attempts: d.Attempts, LastHTTPStatus: d.LastHTTPStatus, LastError: d.LastError,
		NextAttemptAt: rfc3339(d.NextAttemptAt), DeliveredAt: rfc3339(d.DeliveredAt),
		GivenUpAt: rfc3339(d.GivenUpAt), SupersededAt: rfc3339(d.SupersededAt), UpdatedAt: rfc3339(d.UpdatedAt),
	}
}

func (g *Gateway) adminRoutes(r *httprouter.Router) {
	if g.cfg.AdminKey == "" {
		return // admin API off: the routes answer 404 like any unknown path
	}
	r.GET("/api/admin/deliveries", g.auth(g.cfg.AdminKey, g.listDeliveries))
	r.POST("/api/admin/deliveries/:event_id/replay", g.auth(g.cfg.AdminKey, g.replayDelivery))
	r.GET("/api/admin/receipts", g.auth(g.cfg.AdminKey, g.listReceipts))
	r.POST("/api/admin/receipts/:tid/replay", g.auth(g.cfg.AdminKey, g.replayReceipt))
	r.GET("/api/admin/endpoints", g.auth(g.cfg.AdminKey, g.listEndpoints))
	r.POST("/api/admin/endpoints/resume", g.auth(g.cfg.AdminKey, g.resumeEndpoint))
	r.GET("/api/admin/events/:event_id/attempts", g.auth(g.cfg.AdminKey, g.eventAttempts))
	r.GET("/api/admin/orders/:order_id/timeline", g.auth(g.cfg.AdminKey, g.orderTimeline))
}

// attemptJSON is one row of the attempt log (README, "Admin API").
type attemptJSON struct {
	EventID    string `json:"event_id"`
	OrderID    string `json:"order_id"`
	Endpoint   string `json:"endpoint"`
	Status     string `json:"status"`
	Attempt    int    `json:"attempt"`
	At         string `json:"at"`
	DurationMS int64  `json:"duration_ms"`
	HTTPStatus int    `json:"http_status"`
	ErrorClass string `json:"error_class"`
	Error      string `json:"error"`
	Excerpt    string `json:"excerpt"`
	Outcome    string `json:"outcome"`
}

func (g *Gateway) eventAttempts(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	eventID := ps.ByName("event_id")
	as, err := g.deps.Store.AttemptsForEvent(r.Context(), eventID)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	if len(as) == 0 {
		// No attempts: an event never delivered anywhere, or one whose log
		// retention has deleted; only the first is unknown.
		ds, err := g.deps.Store.DeliveriesForEvent(r.Context(), eventID)
		if err != nil {
			g.writeErr(w, r, err)
			return
		}
		if len(ds) == 0 {
			g.writeErr(w, r, domain.Errorf(domain.CodeEventNotFound, "no delivery of that event is recorded"))
			return
		}
	}
	out := make([]attemptJSON, 0, len(as))
	for _, a := range as {
		out = append(out, attemptJSON{
			EventID: a.EventID, OrderID: a.OrderID, Endpoint: config.RedactURL(a.Endpoint), Status: a.Status,
			Attempt: a.Attempt, At: rfc3339(a.At), DurationMS: a.DurationMS, HTTPStatus: a.HTTPStatus,
			ErrorClass: a.ErrorClass, Error: a.Error, Excerpt: a.Excerpt, Outcome: a.Outcome,
		})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"event_id": eventID, "attempts": out})
}

// timelineJSON is one timeline entry: at and kind always, the rest when
// the kind has them (README, "Admin API").
type timelineJSON struct {
	At         string `json:"at"`
	Kind       string `json:"kind"`
	Status     string `json:"status,omitempty"`
	EventID    string `json:"event_id,omitempty"`
	Endpoint   string `json:"endpoint,omitempty"`
	Attempt    int    `json:"attempt,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS *int64 `json:"duration_ms,omitempty"`
	Excerpt    string `json:"excerpt,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

func (g *Gateway) orderTimeline(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	orderID := ps.ByName("order_id")
	es, err := g.deps.Store.OrderTimeline(r.Context(), orderID)
	if errors.Is(err, domain.ErrNotFound) {
		err = domain.Wrap(err, domain.CodeOrderNotFound, "order not found")
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	out := make([]timelineJSON, 0, len(es))
	for _, e := range es {
		j := timelineJSON{
			At: rfc3339(e.At), Kind: e.Kind, Status: e.Status, EventID: e.EventID,
			Attempt: e.Attempt, HTTPStatus: e.HTTPStatus, ErrorClass: e.ErrorClass, Error: e.Error,
			Excerpt: e.Excerpt, Outcome: e.Outcome, Detail: e.Detail,
		}
		if e.Endpoint != "" {
			j.Endpoint = config.RedactURL(e.Endpoint)
		}
		if e.Kind == domain.TimelineAttempt {
			// 0 ms is a real figure for an attempt, not an absent one.
			j.DurationMS = &e.DurationMS
		}
		out = append(out, j)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"order_id": orderID, "timeline": out})
}

// receiptJSON is a parked or dead receipt (README, "Admin API"); the push
// body stays in the store.
type receiptJSON struct {
	TID         string `json:"tid"`
	Type        string `json:"type"`
	Status      string `json:"status"`
	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"last_error"`
	FirstSeenAt string `json:"first_seen_at"`
	LastTryAt   string `json:"last_try_at"`
	NextTryAt   string `json:"next_try_at"`
	DeadAt      string `json:"dead_at"`
}

func toReceiptJSON(p domain.ParkedReceipt) receiptJSON {
	return receiptJSON{
		TID: p.TID, Type: p.Type, Status: p.Status, State: p.State, Attempts: p.Attempts, LastError: p.LastError,
		FirstSeenAt: rfc3339(p.FirstSeen), LastTryAt: rfc3339(p.LastTryAt), NextTryAt: rfc3339(p.NextTryAt),
		DeadAt: rfc3339(p.DeadAt),
	}
}

func (g *Gateway) listReceipts(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	state := q.Get("state")
	switch state {
	case "", domain.ReceiptParked, domain.ReceiptDead:
	default:
		g.writeErr(w, r, domain.Errorf(domain.CodeInvalidState, "state must be parked or dead"))
		return
	}
	limit, ok := g.adminLimit(w, r)
	if !ok {
		return
	}
	rs, err := g.deps.Store.ListReceipts(r.Context(), store.ReceiptFilter{State: state, Limit: limit})
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	out := make([]receiptJSON, 0, len(rs))
	for _, p := range rs {
		out = append(out, toReceiptJSON(p))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"receipts": out})
}

// replayReceipt makes a parked or dead receipt due now: the tradefetcher
// asks Youzan once more and, if the trade exists, puts the receipt back into
// the pipeline; if not, a dead receipt is dead again.
func (g *Gateway) replayReceipt(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	tid := ps.ByName("tid")
	p, err := g.deps.Store.ReopenReceipt(r.Context(), tid, time.Now())
	if errors.Is(err, domain.ErrNotFound) {
		err = domain.Wrap(err, domain.CodeReceiptNotFound, "no parked or dead receipt for that tid")
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	g.log.Info("receipt replayed by operator", "tid", p.TID, "attempts", p.Attempts)
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"replayed": toReceiptJSON(p)})
}

// adminLimit reads ?limit (1 to 1000, default 100), answering the error itself.
func (g *Gateway) adminLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 100, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		g.writeErr(w, r, domain.Errorf(domain.CodeInvalidLimit, "limit must be 1 to 1000"))
		return 0, false
	}
	return n, true
}

func (g *Gateway) listDeliveries(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	state := q.Get("state")
	switch state {
	case "", domain.DeliveryPending, domain.DeliveryDelivered, domain.DeliveryFailed, domain.DeliverySuperseded:
	default:
		g.writeErr(w, r, domain.Errorf(domain.CodeInvalidState, "state must be pending, delivered, failed or superseded"))
		return
	}
	limit, ok := g.adminLimit(w, r)
	if !ok {
		return
	}
	ds, err := g.deps.Store.ListDeliveries(r.Context(), store.DeliveryFilter{State: state, Endpoint: q.Get("endpoint"), Limit: limit})
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, toDeliveryJSON(d))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (g *Gateway) replayDelivery(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if g.deps.Replayer == nil {
		g.writeErr(w, r, domain.Errorf(domain.CodeReplayUnavailable, "replay is not wired in this process"))
		return
	}
	eventID := ps.ByName("event_id")
	ds, err := g.deps.Replayer.Replay(r.Context(), eventID, r.URL.Query().Get("endpoint"))
	if err != nil {
		g.writeErr(w, r, err, "event_id", eventID)
		return
	}
	g.log.Info("delivery replayed by operator", "event_id", eventID, "endpoints", len(ds), "at", time.Now().UTC())
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, toDeliveryJSON(d))
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"replayed": out})
}
