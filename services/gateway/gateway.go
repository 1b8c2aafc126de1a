// Package gateway is yzpay's HTTP edge: merchants create payment QR codes and
// read orders through it, and Youzan pushes trade messages to it. A push is
// answered with Youzan's success body only after the verified receipt is
// stored in JetStream, so nothing Youzan sent is acknowledged and then lost.
package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/metrics"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan"
)

// QRCreator creates Youzan QR codes; *youzan.Client implements it.
type QRCreator interface {
	CreateQRCode(ctx context.Context, name string, priceFen int64) (youzan.QRCode, error)
}

// Deps are the gateway's collaborators.
type Deps struct {
	Store   store.Store
	JS      jetstream.JetStream
	Youzan  QRCreator
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Checks feed /readyz.
	Checks []httpapi.Check
	// Replayer, when set, serves the admin replay endpoint.
	Replayer Replayer
}

// Replayer re-sends one event's delivery through the notifier.
type Replayer interface {
	Replay(ctx context.Context, eventID, endpoint string) ([]domain.Delivery, error)
}

// Gateway serves the HTTP API.
type Gateway struct {
	cfg    config.Gateway
	deps   Deps
	log    *slog.Logger
	m      *metrics.Metrics
	pushes chan struct{} // semaphore of MaxConcurrentPushes
	watch  *watchers     // checkout pages following their orders
	// bodyBytes bounds the push bytes held at once (MaxPushBytes).
	bodyBytes *byteBudget
	con       *console // operator console; nil when ADMIN_API_KEY is unset
}

// New checks the configuration and builds the gateway.
func New(cfg config.Gateway, deps Deps) (*Gateway, error) {
	if deps.Store == nil || deps.JS == nil || deps.Youzan == nil || deps.Metrics == nil {
		return nil, errors.New("gateway: Store, JS, Youzan and Metrics are required")
	}
	if cfg.Youzan.ClientID == "" || cfg.Youzan.ClientSecret == "" {
		return nil, errors.New("gateway: Youzan client id and secret are required to verify pushes")
	}
	if cfg.ClaimFor <= 0 {
		cfg.ClaimFor = 30 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 4 * time.Second
	}
	if cfg.MaxConcurrentPushes <= 0 {
		cfg.MaxConcurrentPushes = 512
	}
	if cfg.PushReadTimeout <= 0 {
		cfg.PushReadTimeout = 3 * time.Second
	}
	if cfg.MaxPushBytes <= 0 {
		cfg.MaxPushBytes = 16 << 20
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if cfg.AdminSessionTTL <= 0 {
		cfg.AdminSessionTTL = config.DefaultAdminSessionTTL
	}
	if cfg.OrderTTL <= 0 {
		cfg.OrderTTL = config.DefaultOrderTTL
	}
	return &Gateway{cfg: cfg, deps: deps, log: deps.Logger, m: deps.Metrics,
		pushes: make(chan struct{}, cfg.MaxConcurrentPushes), bodyBytes: &byteBudget{limit: cfg.MaxPushBytes},
		watch: newWatchers(deps.JS.Conn, deps.Logger)}, nil
}

// Handler is the whole gateway API, instrumented.
func (g *Gateway) Handler() http.Handler {
	r := httprouter.New()
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		g.writeErr(w, req, domain.Errorf(domain.CodeNotFound, "no such route"))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		g.writeErr(w, req, domain.Errorf(domain.CodeMethodNotAllowed, "method not allowed on this route"))
	})
	r.PanicHandler = nil // Instrument recovers and logs

	r.POST("/api/payment/qrcode", g.auth(g.cfg.APIKey, g.createQRCode))
	r.GET("/api/payment/orders/:order_id", g.auth(g.cfg.APIKey, g.getOrder))
	r.POST("/api/payment/orders/:order_id/close", g.auth(g.cfg.APIKey, g.closeOrder))
	r.POST("/api/status", g.receivePush)
	// The checkout page (README, "Checkout page"): public, keyed by token.
	r.GET("/pay/:token", g.checkoutPage)
	r.GET("/pay/:token/events", g.checkoutEvents)
	r.GET("/pay/:token/status", g.checkoutStatus)
	r.GET("/assets/:file", g.serveAsset)
	g.adminRoutes(r)
	g.consoleRoutes(r)

	// Health stays on the public port too, where load balancers and
	// existing probes look for it: it says only up or down, and /readyz's
	// answer is cached, so it cannot be used to load the store or NATS.
	// /metrics tells a stranger too much: only OPS_ADDR=same puts it here
	// (docs/security.md, "Ops port and broker credentials").
	hz, rz := httpapi.Health(g.deps.Checks...)
	r.Handler(http.MethodGet, "/healthz", hz)
	r.Handler(http.MethodGet, "/readyz", rz)
	if g.OpsOnMain() {
		r.Handler(http.MethodGet, "/metrics", g.m.Handler())
	}

	return httpapi.Instrument(r, g.m, g.log, func(req *http.Request) string {
		if h, ps, _ := r.Lookup(req.Method, req.URL.Path); h != nil {
			route := req.URL.Path
			if v := ps.ByName("order_id"); v != "" {
				route = strings.Replace(route, v, ":order_id", 1)
			}
			if v := ps.ByName("file"); v != "" {
				route = "/assets/:file"
			}
			if v := ps.ByName("token"); v != "" {
				// Never a token in a label: it is the page's key.
				route = strings.Replace(route, v, ":token", 1)
			}
			if v := ps.ByName("event_id"); v != "" {
				route = strings.Replace(route, v, ":event_id", 1)
			}
			return route
		}
		return "unmatched"
	})
}

// OpsOnMain reports whether /metrics is served by Handler (OPS_ADDR=same)
// rather than only by OpsHandler on its own listener, away from the port
// the internet reaches.
func (g *Gateway) OpsOnMain() bool {
	return g.cfg.OpsAddr == "" || g.cfg.OpsAddr == config.OpsSame
}

// OpsHandler serves /metrics, /healthz and /readyz for the OPS_ADDR
// listener.
func (g *Gateway) OpsHandler() http.Handler {
	return httpapi.OpsMux(g.m, g.log, g.deps.Checks...)
}

// auth compares the bearer key in constant time; an empty key leaves the
// route open (sandbox mode, warned about at start).
func (g *Gateway) auth(key string, h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if key != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(key)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="yzpay"`)
				g.writeErr(w, r, domain.Errorf(domain.CodeUnauthorized, "missing or wrong bearer key"))
				return
			}
		}
		h(w, r, ps)
	}
}
