package gateway

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/qrimage"
)

//go:embed assets
var assets embed.FS

var pageTmpl = template.Must(template.ParseFS(assets, "assets/checkout.html"))

// csp allows nothing but this gateway's own stylesheet, script and
// EventSource/fetch, and the QR's data: image; no inline script or style.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// keepAlive is how often an idle event stream gets a comment line, so
// proxies do not cut it and a gone buyer is noticed.
const keepAlive = 20 * time.Second

// startEventStream answers w as a Server-Sent Events stream (the checkout
// page's and the console's) and returns the function that writes one frame
// and flushes it, false once the client is gone.
func startEventStream(w http.ResponseWriter) func(frame string) bool {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	rc := http.NewResponseController(w)
	// ReadTimeout is for request bodies, not a stream that outlives it.
	_ = rc.SetReadDeadline(time.Time{})
	return func(frame string) bool {
		// The server's WriteTimeout would end a long stream; each write
		// gets its own deadline instead, which also drops a vanished viewer.
		_ = rc.SetWriteDeadline(time.Now().Add(keepAlive + 10*time.Second))
		if _, err := fmt.Fprint(w, frame); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
}

// pageState is what the page shows, as JSON on the status endpoint and in
// the event stream.
type pageState struct {
	// State: pending, paid, expired (unpaid past ORDER_TTL) or closed
	// (closed unpaid before it, by the merchant).
	State     string `json:"state"`
	Status    string `json:"status"`
	ExpiresAt int64  `json:"expires_at"` // unix milliseconds
	// ReturnURL: the merchant's return_url with the signed query, once paid.
	ReturnURL string `json:"return_url,omitempty"`
}

// pageView follows one order on one page: the furthest event seen.
type pageView struct {
	co       domain.Checkout
	ev       domain.PaymentEvent
	everPaid bool
	expires  time.Time
}

func (g *Gateway) newPageView(co domain.Checkout, o domain.Order) *pageView {
	return &pageView{co: co, ev: domain.FromOrder(o), everPaid: o.EverPaid, expires: o.CreatedAt.Add(g.cfg.OrderTTL)}
}

// apply moves the view by ev under the lifecycle rules; false if ev is
// stale.
func (v *pageView) apply(ev domain.PaymentEvent) bool {
	if !domain.Advances(v.ev.Status, v.everPaid, ev.Status) {
		return false
	}
	v.ev = ev
	v.everPaid = v.everPaid || domain.IsPaid(ev.Status)
	return true
}

func (g *Gateway) state(v *pageView, now time.Time) pageState {
	s := pageState{Status: v.ev.Status, ExpiresAt: v.expires.UnixMilli()}
	switch {
	case domain.IsPaid(v.ev.Status) || v.everPaid:
		s.State = "paid"
		s.ReturnURL = g.returnTo(v.co, v.ev, now)
	case v.ev.Status == domain.StatusTradeClosed && now.Before(v.expires):
		s.State = "closed"
	case v.ev.Status == domain.StatusTradeClosed || !now.Before(v.expires):
		s.State = "expired"
	default:
		s.State = "pending"
	}
	return s
}

// load finds the page's checkout and order; errors are API errors.
func (g *Gateway) load(ctx context.Context, token string) (*pageView, domain.Order, error) {
	co, err := g.checkoutByToken(ctx, token)
	if err != nil {
		return nil, domain.Order{}, err
	}
	o, err := g.deps.Store.OrderByID(ctx, co.OrderID)
	if err != nil {
		return nil, domain.Order{}, err
	}
	return g.newPageView(co, o), o, nil
}

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	// The token is the page's key: never hand it to the return_url's site
	// or any other in a Referer.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// lang picks zh or en from Accept-Language, Chinese unless English is
// preferred.
func lang(header string) string {
	type pref struct {
		tag string
		q   float64
	}
	var prefs []pref
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		prefs = append(prefs, pref{strings.ToLower(strings.TrimSpace(tag)), q})
	}
	sort.SliceStable(prefs, func(i, j int) bool { return prefs[i].q > prefs[j].q })
	for _, p := range prefs {
		switch {
		case p.q <= 0:
		case p.tag == "zh" || strings.HasPrefix(p.tag, "zh-"):
			return "zh"
		case p.tag == "en" || strings.HasPrefix(p.tag, "en-"):
			return "en"
		}
	}
	return "zh"
}

func yuan(fen int64) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }

type pageData struct {
	T         map[string]string
	Lang      string
	Name      string
	Amount    string
	QRImage   template.URL
	QRURL     template.URL
	State     pageState
	Token     string
	Sandbox   bool
	QRID      int64
	ExpiresAt string
}

// checkoutPage serves /pay/:token: the whole page is rendered here, so it
// shows the right state even before (or without) its script.
func (g *Gateway) checkoutPage(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	pageHeaders(w)
	l := lang(r.Header.Get("Accept-Language"))
	v, o, err := g.load(r.Context(), ps.ByName("token"))
	if err != nil {
		g.pageError(w, r, err, l)
		return
	}
	img, err := qrimage.PNGDataURI(o.QRURL)
	if err != nil {
		g.pageError(w, r, domain.Wrap(err, domain.CodeQRRenderFailed, "could not render the QR image"), l)
		return
	}
	d := pageData{
		T: texts[l], Lang: l, Name: o.Name, Amount: yuan(o.Price),
		// Both come from us (our PNG encoder, Youzan's QR URL); the URL
		// is still checked, so a javascript: URL could never be a link.
		QRImage: template.URL(img), QRURL: safeURL(o.QRURL),
		State: g.state(v, time.Now()), Token: v.co.Token, Sandbox: g.cfg.Sandbox, QRID: o.QRID,
		ExpiresAt: strconv.FormatInt(v.expires.UnixMilli(), 10),
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, d); err != nil {
		g.log.Warn("checkout page: write", "err", err)
	}
}

func safeURL(s string) template.URL {
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") {
		return template.URL(s)
	}
	return ""
}

// pageError answers a browser with a short page; it is counted like any
// API error.
func (g *Gateway) pageError(w http.ResponseWriter, r *http.Request, err error, l string) {
	code, ok := domain.AsError(err)
	status, msg := http.StatusServiceUnavailable, texts[l]["unavailable"]
	c := domain.CodeUnavailable
	if ok && (code.Code == domain.CodeNotFound || code.Code == domain.CodeOrderNotFound) {
		status, msg, c = http.StatusNotFound, texts[l]["notfound"], domain.CodeNotFound
	} else {
		g.log.Error("checkout page failed", "err", err)
	}
	g.m.APIErrors.WithLabelValues(string(c)).Inc()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = errTmpl.Execute(w, map[string]string{"Lang": l, "Msg": msg, "Title": texts[l]["title"]})
}

var errTmpl = template.Must(template.New("err").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title><link rel="stylesheet" href="/assets/checkout.css"></head>
<body class="state-error"><main class="card"><p class="notice">{{.Msg}}</p></main></body></html>`))

// checkoutStatus serves /pay/:token/status, the page's fallback when
// EventSource is missing or blocked.
func (g *Gateway) checkoutStatus(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	v, _, err := g.load(r.Context(), ps.ByName("token"))
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, g.state(v, time.Now()))
}

// checkoutEvents serves /pay/:token/events as Server-Sent Events: the state
// at once, then every change. The stream is the page's one goroutine: on
// HTTP/1.x the connection is hijacked and streamed from a goroutine of our
// own (net/http's connection goroutine and background reader end); on
// HTTP/2 it is the server's handler goroutine. It ends when the order is
// paid (the page has all it needs) or the buyer leaves.
func (g *Gateway) checkoutEvents(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	ctx := r.Context()
	co, err := g.checkoutByToken(ctx, ps.ByName("token"))
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	events, stop, err := g.watch.watch(co.OrderID)
	if err != nil {
		g.writeErr(w, r, domain.Wrap(err, domain.CodeUnavailable, "live status is unavailable; poll the status endpoint"))
		return
	}
	release := true // until the stream owns the watch
	defer func() {
		if release {
			stop()
		}
	}()
	o, err := g.deps.Store.OrderByID(ctx, co.OrderID)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	v := g.newPageView(co, o)
	es := openEventStream(w, r)
	if es.hijacked {
		// The connection is the stream's alone now: it goes on in a
		// goroutine of its own and the handler returns, so net/http's
		// state for the connection (its buffers, the request) is freed
		// and the page costs that goroutine and a few KiB. A client that
		// leaves is noticed by a failed write, not by the context.
		release = false
		go func() {
			defer func() {
				if p := recover(); p != nil {
					g.log.Error("checkout event stream panicked", "panic", fmt.Sprint(p))
				}
			}()
			g.streamPage(nil, es, v, events, stop)
		}()
		return
	}
	release = false
	g.streamPage(ctx.Done(), es, v, events, stop)
}

// streamPage writes v's state, then every change, until the order is paid,
// done is closed (nil: never) or the client is gone; then it releases the
// page's watch and stream.
func (g *Gateway) streamPage(done <-chan struct{}, es eventStream, v *pageView, events <-chan domain.PaymentEvent, stop func()) {
	defer stop()
	defer es.close()
	send := es.send
	sendState := func() (bool, string) {
		s := g.state(v, time.Now())
		b, _ := json.Marshal(s)
		return send("event: status\ndata: " + string(b) + "\n\n"), s.State
	}
	// retry: how soon EventSource reconnects after a cut.
	if !send("retry: 3000\n\n") {
		return
	}
	ok, st := sendState()
	if !ok || st == "paid" {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case ev := <-events:
			if !v.apply(ev) {
				continue
			}
			ok, st := sendState()
			if !ok || st == "paid" {
				return
			}
		case <-tick.C:
			if !send(": keep-alive\n\n") {
				return
			}
		}
	}
}

// serveAsset serves the page's stylesheet and script from the binary.
func (g *Gateway) serveAsset(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var ctype string
	switch f := ps.ByName("file"); f {
	case "checkout.css", "console.css":
		ctype = "text/css; charset=utf-8"
	case "checkout.js", "console.js":
		ctype = "text/javascript; charset=utf-8"
	default:
		g.writeErr(w, r, domain.Errorf(domain.CodeNotFound, "no such route"))
		return
	}
	b, _ := assets.ReadFile("assets/" + ps.ByName("file")) // embedded: cannot fail
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}
