package gateway

import (
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
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			g.writeErr(w, r, domain.Errorf(domain.CodeInvalidLimit, "limit must be 1 to 1000"))
			return
		}
		limit = n
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
