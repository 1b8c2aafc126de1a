package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/natsjs"
	"github.com/yzpay/yzpay/shared/store"
	"github.com/yzpay/yzpay/shared/youzan"
)

// The operator console (README, "Operator console"): server-rendered pages
// under /admin behind ADMIN_API_KEY, one embedded stylesheet and script, the
// checkout page's strict CSP except that forms may post to the gateway.

const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

const (
	sessionCookie = "console_session"
	// Failed logins from one address within loginWindow beyond
	// maxLoginFailures are refused without looking at the password.
	maxLoginFailures = 5
	loginWindow      = 10 * time.Minute
)

var consoleTmpl = template.Must(template.New("console").Funcs(template.FuncMap{
	"yuan":  yuan,
	"when":  func(t time.Time) string { return whenLocal(t) },
	"short": func(s string, n int) string { return shortText(s, n) },
	// ostatus: an order status in the page's words (the code stays in the
	// element's class and title).
	"ostatus": func(t map[string]string, s string) string {
		if v, ok := t["os_"+s]; ok {
			return v
		}
		return s
	},
	"aaction": func(l, a string) string { return text(l, "a_"+a, a) },
	"adetail": auditDetail,
}).ParseFS(assets, "assets/console.html"))

func whenLocal(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func shortText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// session is what the signed cookie carries. Any replica that knows
// ADMIN_API_KEY accepts it, so the console works behind a load balancer
// without shared session state.
type session struct {
	ID    string `json:"i"`
	Label string `json:"l,omitempty"`
	Exp   int64  `json:"e"` // unix seconds
}

// who names the session in the audit log and logs: never a secret.
func (s session) who() string {
	if s.Label == "" {
		return s.ID[:8]
	}
	return s.ID[:8] + " (" + s.Label + ")"
}

// console holds the console's per-gateway state.
type console struct {
	key []byte // HMAC key derived from ADMIN_API_KEY

	mu      sync.Mutex
	fails   map[string]*loginFailures // by client IP
	revoked map[string]time.Time      // logged-out session ids, until their expiry

	hub *consoleHub
}

type loginFailures struct {
	n     int
	first time.Time
}

func newConsole(g *Gateway) *console {
	m := hmac.New(sha256.New, []byte(g.cfg.AdminKey))
	m.Write([]byte("yzpay console session v1"))
	c := &console{key: m.Sum(nil), fails: map[string]*loginFailures{}, revoked: map[string]time.Time{}}
	c.hub = newConsoleHub(g)
	return c
}

func (c *console) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, c.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (c *console) encode(s session) string {
	b, _ := json.Marshal(s)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(c.mac("session", p))
}

func (c *console) decode(v string, now time.Time) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, c.mac("session", p)) {
		return session{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	var s session
	if err != nil || json.Unmarshal(b, &s) != nil || len(s.ID) < 16 || now.Unix() >= s.Exp {
		return session{}, false
	}
	c.mu.Lock()
	_, gone := c.revoked[s.ID]
	c.mu.Unlock()
	return s, !gone
}

// csrf is the session's CSRF token: derived, so every replica agrees
// without storing it, and useless without the HttpOnly cookie's session.
func (c *console) csrf(s session) string {
	return base64.RawURLEncoding.EncodeToString(c.mac("csrf", s.ID))[:32]
}

// allowLogin reports whether ip may try a password now.
func (c *console) allowLogin(ip string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fails[ip]
	if f == nil || now.Sub(f.first) > loginWindow {
		return true
	}
	return f.n < maxLoginFailures
}

// failLogin counts a failure from ip and returns the count in the window.
func (c *console) failLogin(ip string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fails) > 10000 { // a spray from many addresses: forget old windows
		for k, f := range c.fails {
			if now.Sub(f.first) > loginWindow {
				delete(c.fails, k)
			}
		}
	}
	f := c.fails[ip]
	if f == nil || now.Sub(f.first) > loginWindow {
		f = &loginFailures{first: now}
		c.fails[ip] = f
	}
	f.n++
	return f.n
}

func (c *console) revoke(s session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().Unix()
	for id, exp := range c.revoked {
		if exp.Unix() < now {
			delete(c.revoked, id)
		}
	}
	c.revoked[s.ID] = time.Unix(s.Exp, 0)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (g *Gateway) consoleRoutes(r *httprouter.Router) {
	if g.cfg.AdminKey == "" {
		return // console off with the admin API
	}
	g.con = newConsole(g)
	r.GET("/admin", g.page(g.ordersPage))
	r.GET("/admin/login", g.loginPage)
	r.POST("/admin/login", g.login)
	r.POST("/admin/logout", g.action(g.logout))
	r.GET("/admin/orders/:order_id", g.page(g.orderPage))
	r.GET("/admin/orders/:order_id/live", g.page(g.orderLive))
	r.POST("/admin/orders/:order_id/close", g.action(g.consoleClose))
	r.POST("/admin/orders/:order_id/reconcile", g.action(g.consoleReconcile))
	r.GET("/admin/deliveries", g.page(g.deliveriesPage))
	r.POST("/admin/deliveries/replay", g.action(g.consoleReplay))
	r.POST("/admin/deliveries/replay-all", g.action(g.consoleReplayAll))
	r.POST("/admin/endpoints/resume", g.action(g.consoleResume))
	r.GET("/admin/events", g.page(g.consoleEvents))
}

func (g *Gateway) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	return g.con.decode(ck.Value, time.Now())
}

// secureCookies: Secure whenever the operator reaches the gateway over TLS,
// directly or behind a proxy that PUBLIC_URL says is https.
func (g *Gateway) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(g.cfg.PublicURL, "https://")
}

type consoleHandle func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, s session)

// page serves a console GET to a logged-in operator; others go to the
// login form.
func (g *Gateway) page(h consoleHandle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		pageHeaders(w)
		w.Header().Set("Content-Security-Policy", consoleCSP)
		s, ok := g.session(r)
		if !ok {
			if wantsJSON(r) || strings.HasSuffix(r.URL.Path, "/events") || strings.HasSuffix(r.URL.Path, "/live") {
				g.writeErr(w, r, domain.Errorf(domain.CodeUnauthorized, "log in to the console first"))
				return
			}
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		h(w, r, ps, s)
	}
}

// action serves a console POST: a session and its CSRF token (form field
// csrf or header X-CSRF-Token) are required.
func (g *Gateway) action(h consoleHandle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		pageHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s, ok := g.session(r)
		if !ok {
			g.writeErr(w, r, domain.Errorf(domain.CodeUnauthorized, "log in to the console first"))
			return
		}
		tok := r.Header.Get("X-CSRF-Token")
		if tok == "" {
			tok = r.PostFormValue("csrf")
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(g.con.csrf(s))) != 1 {
			g.log.Warn("console: POST without a valid CSRF token refused", "path", r.URL.Path, "who", s.who(), "ip", clientIP(r))
			g.writeErr(w, r, domain.Errorf(domain.CodeCSRF, "missing or wrong CSRF token; reload the page"))
			return
		}
		h(w, r, ps, s)
	}
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// done answers an action: JSON for the page's script, else back to the
// page the form was on. The message, and an error's, are in the operator's
// language; the error's code is the API's.
func (g *Gateway) done(w http.ResponseWriter, r *http.Request, m textMsg, err error) {
	l := lang(r.Header.Get("Accept-Language"))
	if err != nil {
		g.writeErr(w, r, g.consoleErr(r, l, err))
		return
	}
	if wantsJSON(r) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": m.in(l)})
		return
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/admin") || strings.HasPrefix(back, "//") {
		back = "/admin"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// consoleErr gives err the code writeErr would and a message in language l.
func (g *Gateway) consoleErr(r *http.Request, l string, err error) error {
	e, _ := domain.AsError(g.apiError(r, err))
	if l == "en" {
		return e
	}
	return domain.Wrap(e, e.Code, errText(l, e))
}

// audit records an action; a store failure is logged, not hidden from the
// operator's result (the action itself happened).
func (g *Gateway) audit(ctx context.Context, s session, action, orderID, eventID string, m textMsg) {
	detail := m.in("en") // the log's language; the page translates it back
	if _, err := g.deps.Store.RecordAudit(context.WithoutCancel(ctx), domain.AuditEntry{
		Who: s.who(), Action: action, OrderID: orderID, EventID: eventID, Detail: detail,
	}); err != nil {
		g.log.Error("console: audit entry not stored", "action", action, "who", s.who(), "order_id", orderID, "err", err)
	}
	g.log.Info("console action", "action", action, "who", s.who(), "order_id", orderID, "event_id", eventID, "detail", detail)
}

type consoleView struct {
	T       map[string]string
	Lang    string
	Page    string
	Who     string
	CSRF    string
	Order   string // the order page's id, for its live stream
	Error   string
	Summary consoleSummary
	Data    any
}

func (g *Gateway) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, v consoleView) {
	v.Lang = lang(r.Header.Get("Accept-Language"))
	v.T = consoleTexts[v.Lang]
	v.Page = name
	if s != nil {
		v.Who, v.CSRF = s.who(), g.con.csrf(*s)
		v.Summary = g.con.hub.lastSummary()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := consoleTmpl.ExecuteTemplate(w, name, v); err != nil {
		g.log.Warn("console page: write", "page", name, "err", err)
	}
}

func (g *Gateway) loginPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	pageHeaders(w)
	w.Header().Set("Content-Security-Policy", consoleCSP)
	if _, ok := g.session(r); ok {
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	g.render(w, r, http.StatusOK, "login", nil, consoleView{})
}

func (g *Gateway) login(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	pageHeaders(w)
	w.Header().Set("Content-Security-Policy", consoleCSP)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ip, now := clientIP(r), time.Now()
	l := consoleTexts[lang(r.Header.Get("Accept-Language"))]
	if !g.con.allowLogin(ip, now) {
		g.log.Warn("console login refused: too many failed logins from this address", "ip", ip)
		g.m.APIErrors.WithLabelValues(string(domain.CodeTooManyLogins)).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(loginWindow.Seconds())))
		g.render(w, r, http.StatusTooManyRequests, "login", nil, consoleView{Error: l["toomany"]})
		return
	}
	pw := r.PostFormValue("password")
	if subtle.ConstantTimeCompare([]byte(pw), []byte(g.cfg.AdminKey)) != 1 {
		n := g.con.failLogin(ip, now)
		// Never the password: not even its length.
		g.log.Warn("console login failed", "ip", ip, "failures_in_window", n)
		g.m.APIErrors.WithLabelValues(string(domain.CodeLoginFailed)).Inc()
		g.render(w, r, http.StatusUnauthorized, "login", nil, consoleView{Error: l["badlogin"]})
		return
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	label := shortText(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(r.PostFormValue("name"))), 32)
	s := session{ID: hex.EncodeToString(id[:]), Label: label, Exp: now.Add(g.cfg.AdminSessionTTL).Unix()}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: g.con.encode(s), Path: "/admin", Expires: time.Unix(s.Exp, 0),
		MaxAge: int(g.cfg.AdminSessionTTL.Seconds()), HttpOnly: true, Secure: g.secureCookies(r),
		SameSite: http.SameSiteStrictMode,
	})
	g.audit(r.Context(), s, "login", "", "", msg("m_from", ip))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (g *Gateway) logout(w http.ResponseWriter, r *http.Request, _ httprouter.Params, s session) {
	g.con.revoke(s)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin", MaxAge: -1,
		HttpOnly: true, Secure: g.secureCookies(r), SameSite: http.SameSiteStrictMode})
	g.audit(r.Context(), s, "logout", "", "", textMsg{})
	if wantsJSON(r) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"message": msg("m_logged_out").in(lang(r.Header.Get("Accept-Language")))})
		return
	}
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// --- orders ---

type ordersData struct {
	Q, Status, From, To string
	Statuses            []string
	Orders              []domain.Order
	Next                string // query of the next page, "" on the last
	Searched            bool
}

var consoleStatuses = []string{domain.StatusWaitBuyerPay, domain.StatusTradeSuccess, domain.StatusTradeClosed}

// ordersPage: a search by order id, qr id or trade id goes straight to the
// order; otherwise orders by status and creation date, keyset-paged.
func (g *Gateway) ordersPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params, s session) {
	q := r.URL.Query()
	d := ordersData{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), From: q.Get("from"), To: q.Get("to"), Statuses: consoleStatuses}
	v := consoleView{Data: &d}
	ctx := r.Context()
	if d.Q != "" {
		d.Searched = true
		o, err := g.findOrder(ctx, d.Q)
		if err == nil {
			http.Redirect(w, r, "/admin/orders/"+o.OrderID, http.StatusSeeOther)
			return
		}
		if !errors.Is(err, domain.ErrNotFound) {
			g.log.Error("console: search", "err", err)
			v.Error = consoleTexts[lang(r.Header.Get("Accept-Language"))]["unavailable"]
		}
		g.render(w, r, http.StatusOK, "orders", &s, v)
		return
	}
	f := store.OrderFilter{Status: d.Status, Limit: 50}
	if t, err := time.ParseInLocation("2006-01-02", d.From, time.Local); err == nil {
		f.CreatedAfter = t
	}
	if t, err := time.ParseInLocation("2006-01-02", d.To, time.Local); err == nil {
		f.CreatedBefore = t.AddDate(0, 0, 1)
	}
	if at, id, ok := strings.Cut(q.Get("after"), "_"); ok {
		if us, err := strconv.ParseInt(at, 10, 64); err == nil {
			f.AfterCreatedAt, f.AfterOrderID = time.UnixMicro(us), id
		}
	}
	f.Limit++ // one more tells whether there is a next page
	os, err := g.deps.Store.ListOrders(ctx, f)
	if err != nil {
		g.log.Error("console: list orders", "err", err)
		v.Error = consoleTexts[lang(r.Header.Get("Accept-Language"))]["unavailable"]
	}
	if len(os) == f.Limit {
		os = os[:f.Limit-1]
		last := os[len(os)-1]
		nq := make(map[string][]string, len(q))
		for k, vs := range q {
			nq[k] = vs
		}
		nq["after"] = []string{fmt.Sprintf("%d_%s", last.CreatedAt.UnixMicro(), last.OrderID)}
		d.Next = encodeQuery(nq)
	}
	d.Orders = os
	g.render(w, r, http.StatusOK, "orders", &s, v)
}

func encodeQuery(q map[string][]string) string {
	var b strings.Builder
	for k, vs := range q {
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(template.URLQueryEscaper(k) + "=" + template.URLQueryEscaper(v))
		}
	}
	return b.String()
}

// findOrder looks q up as an order id, a qr id and a trade id.
func (g *Gateway) findOrder(ctx context.Context, q string) (domain.Order, error) {
	if o, err := g.deps.Store.OrderByID(ctx, q); !errors.Is(err, domain.ErrNotFound) {
		return o, err
	}
	if n, err := strconv.ParseInt(q, 10, 64); err == nil && n > 0 {
		if o, err := g.deps.Store.OrderByQRID(ctx, n); !errors.Is(err, domain.ErrNotFound) {
			return o, err
		}
	}
	// A tradeNo from a notification is <tid>-<qr_id>: accept it too.
	tid := q
	if i := strings.LastIndexByte(q, '-'); i > 0 {
		if _, err := strconv.ParseInt(q[i+1:], 10, 64); err == nil {
			if o, err := g.deps.Store.OrderByTID(ctx, q[:i]); err == nil {
				return o, nil
			}
		}
	}
	return g.deps.Store.OrderByTID(ctx, tid)
}

// --- order page ---

type orderData struct {
	O        domain.Order
	Closable bool
	Live     liveData
}

type liveData struct {
	Closable bool
	Timeline []timelineEntry
	Audit    []domain.AuditEntry
	O        domain.Order
	CSRF     string
	T        map[string]string
	Lang     string
}

func (g *Gateway) orderPage(w http.ResponseWriter, r *http.Request, ps httprouter.Params, s session) {
	l := lang(r.Header.Get("Accept-Language"))
	o, live, err := g.orderLiveData(r.Context(), ps.ByName("order_id"), s, l)
	if errors.Is(err, domain.ErrNotFound) {
		g.render(w, r, http.StatusNotFound, "orders", &s, consoleView{Error: consoleTexts[l]["noorder"], Data: &ordersData{Statuses: consoleStatuses}})
		return
	}
	if err != nil {
		g.log.Error("console: order page", "err", err)
		g.render(w, r, http.StatusServiceUnavailable, "orders", &s, consoleView{Error: consoleTexts[l]["unavailable"], Data: &ordersData{Statuses: consoleStatuses}})
		return
	}
	d := orderData{O: o, Closable: live.Closable, Live: live}
	g.render(w, r, http.StatusOK, "order", &s, consoleView{Order: o.OrderID, Data: &d})
}

// orderLive serves the order page's live part (timeline and audit log) as
// an HTML fragment; the page fetches it when its event stream says the
// order changed, instead of polling.
func (g *Gateway) orderLive(w http.ResponseWriter, r *http.Request, ps httprouter.Params, s session) {
	l := lang(r.Header.Get("Accept-Language"))
	_, live, err := g.orderLiveData(r.Context(), ps.ByName("order_id"), s, l)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := consoleTmpl.ExecuteTemplate(w, "live", live); err != nil {
		g.log.Warn("console fragment: write", "err", err)
	}
}

func (g *Gateway) orderLiveData(ctx context.Context, id string, s session, l string) (domain.Order, liveData, error) {
	o, err := g.deps.Store.OrderByID(ctx, id)
	if err != nil {
		return o, liveData{}, err
	}
	tl, err := g.consoleTimeline(ctx, o, l)
	if err != nil {
		return o, liveData{}, err
	}
	au, err := g.deps.Store.ListAudit(ctx, store.AuditFilter{OrderID: id, Limit: 100})
	if err != nil {
		return o, liveData{}, err
	}
	closable := o.Status == domain.StatusWaitBuyerPay && !o.EverPaid
	return o, liveData{Closable: closable, Timeline: tl, Audit: au, O: o, CSRF: g.con.csrf(s), T: consoleTexts[l], Lang: l}, nil
}

func (g *Gateway) consoleClose(w http.ResponseWriter, r *http.Request, ps httprouter.Params, s session) {
	id := ps.ByName("order_id")
	_, err := g.closeUnpaid(r.Context(), id)
	m := msg("m_closed")
	if err != nil {
		m = msg("m_refused", domain.ErrorCode(err))
	}
	g.audit(r.Context(), s, "close", id, "", m)
	g.done(w, r, m, err)
}

// consoleReconcile feeds the order's trades into the pipeline now: the
// trade it already has, and any paid trade Youzan lists for its QR (a
// payment whose push was lost). The tradefetcher then reads each trade and
// records what it finds, exactly as for a push.
func (g *Gateway) consoleReconcile(w http.ResponseWriter, r *http.Request, ps httprouter.Params, s session) {
	ctx := r.Context()
	id := ps.ByName("order_id")
	o, err := g.deps.Store.OrderByID(ctx, id)
	if err != nil {
		g.done(w, r, textMsg{}, err)
		return
	}
	tids := map[string]bool{}
	if o.TID != "" {
		tids[o.TID] = true
	}
	var yzErr error
	// When the gateway's Youzan client can list a QR's trades (the real
	// client and the sandbox can), ask for paid ones as the sweep does.
	if l, ok := g.deps.Youzan.(youzan.QRTradeLister); ok && o.QRID != 0 {
		paid, err := youzan.PaidTIDs(ctx, l, o.QRID)
		yzErr = err
		for _, tid := range paid {
			tids[tid] = true
		}
	}
	n := 0
	for tid := range tids {
		if err := natsjs.PublishReconcileReceipt(ctx, g.deps.JS, tid, time.Now()); err != nil {
			err = domain.Wrap(err, domain.CodeBrokerUnavailable, "could not hand the trade to the pipeline; try again")
			g.audit(ctx, s, "reconcile", id, "", msg("m_refused", domain.ErrorCode(err)))
			g.done(w, r, textMsg{}, err)
			return
		}
		n++
	}
	detail := msg("m_handed", n)
	if yzErr != nil && n == 0 {
		g.audit(ctx, s, "reconcile", id, "", msg("m_youzan", yzErr.Error()))
		g.done(w, r, textMsg{}, yzErr)
		return
	}
	g.audit(ctx, s, "reconcile", id, "", detail)
	g.done(w, r, detail, nil)
}

// --- deliveries ---

// endpointRef names a delivery's endpoint in a page or form without the
// URL itself, which may carry credentials.
func endpointRef(endpoint string) string {
	sum := sha256.Sum256([]byte(endpoint))
	return hex.EncodeToString(sum[:8])
}

type deliveriesData struct {
	State      string
	States     []string
	Deliveries []deliveryRow
	Endpoints  []endpointRow       // the paused tab
	Resumes    []domain.AuditEntry // the paused tab: recent resumes by hand
}

type deliveryRow struct {
	domain.Delivery
	Ref, Shown string // endpointRef, redacted URL
}

type endpointRow struct {
	domain.EndpointHealth
	Ref, Shown string // endpointRef, redacted URL
}

func (g *Gateway) deliveriesPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params, s session) {
	ctx := r.Context()
	state := r.URL.Query().Get("state")
	switch state {
	case domain.DeliveryFailed, domain.DeliverySuperseded, domain.DeliveryPending, "paused":
	default:
		state = domain.DeliveryFailed
	}
	d := deliveriesData{State: state, States: []string{domain.DeliveryFailed, domain.DeliveryPending, domain.DeliverySuperseded, "paused"}}
	v := consoleView{Data: &d}
	unavailable := func(what string, err error) {
		g.log.Error("console: "+what, "err", err)
		v.Error = consoleTexts[lang(r.Header.Get("Accept-Language"))]["unavailable"]
	}
	if state == "paused" {
		// Endpoint health as GET /api/admin/endpoints lists it: paused
		// endpoints first (the store's order), then active ones still failing.
		hs, err := g.deps.Store.ListEndpointHealth(ctx)
		if err != nil {
			unavailable("endpoint health", err)
		}
		for _, h := range hs {
			d.Endpoints = append(d.Endpoints, endpointRow{EndpointHealth: h, Ref: endpointRef(h.Endpoint), Shown: config.RedactURL(h.Endpoint)})
		}
		// A resume concerns no order, so the tab shows it instead.
		au, err := g.deps.Store.ListAudit(ctx, store.AuditFilter{Limit: 200})
		if err != nil {
			unavailable("audit", err)
		}
		for _, e := range au {
			if e.Action == "resume" && len(d.Resumes) < 10 {
				d.Resumes = append(d.Resumes, e)
			}
		}
		g.render(w, r, http.StatusOK, "deliveries", &s, v)
		return
	}
	ds, err := g.deps.Store.ListDeliveries(ctx, store.DeliveryFilter{State: state, Limit: 200})
	if err != nil {
		unavailable("list deliveries", err)
	}
	for _, x := range ds {
		d.Deliveries = append(d.Deliveries, deliveryRow{Delivery: x, Ref: endpointRef(x.Endpoint), Shown: config.RedactURL(x.Endpoint)})
	}
	g.render(w, r, http.StatusOK, "deliveries", &s, v)
}

// consoleResume resumes the endpoint named by ep (its endpointRef, so the
// page never carries a URL's credentials) as POST /api/admin/endpoints/resume
// does.
func (g *Gateway) consoleResume(w http.ResponseWriter, r *http.Request, _ httprouter.Params, s session) {
	ctx := r.Context()
	ref := r.PostFormValue("ep")
	hs, err := g.deps.Store.ListEndpointHealth(ctx)
	if err != nil {
		g.done(w, r, textMsg{}, err)
		return
	}
	endpoint := ""
	for _, h := range hs {
		if ref != "" && endpointRef(h.Endpoint) == ref {
			endpoint = h.Endpoint
		}
	}
	if endpoint == "" {
		g.done(w, r, textMsg{}, domain.Errorf(domain.CodeEndpointNotFound, "no endpoint health for that endpoint; reload the page"))
		return
	}
	shown := config.RedactURL(endpoint)
	_, changed, err := g.resumeEndpointNow(ctx, endpoint)
	m := msg("m_resumed", shown)
	switch {
	case err != nil:
		m = msg("m_refused", domain.ErrorCode(err))
	case !changed:
		m = msg("m_not_paused", shown)
	}
	g.audit(ctx, s, "resume", "", "", m)
	g.done(w, r, m, err)
}

// consoleReplay replays one event's delivery (all its endpoints, or the
// one named by ep) through the admin API's replayer.
func (g *Gateway) consoleReplay(w http.ResponseWriter, r *http.Request, _ httprouter.Params, s session) {
	ctx := r.Context()
	eventID, ref := r.PostFormValue("event_id"), r.PostFormValue("ep")
	if g.deps.Replayer == nil {
		g.done(w, r, textMsg{}, domain.Errorf(domain.CodeReplayUnavailable, "replay is not wired in this process"))
		return
	}
	ds, err := g.deps.Store.DeliveriesForEvent(ctx, eventID)
	if err != nil {
		g.done(w, r, textMsg{}, err)
		return
	}
	endpoint, orderID := "", ""
	for _, d := range ds {
		orderID = d.OrderID
		if ref != "" && endpointRef(d.Endpoint) == ref {
			endpoint = d.Endpoint
		}
	}
	if len(ds) == 0 || (ref != "" && endpoint == "") {
		g.done(w, r, textMsg{}, domain.Errorf(domain.CodeDeliveryNotFound, "no delivery recorded for that event (and endpoint)"))
		return
	}
	got, err := g.deps.Replayer.Replay(ctx, eventID, endpoint)
	detail := msg("m_reopened", len(got))
	if err != nil {
		err = g.apiError(r, err)
		detail = msg("m_refused", domain.ErrorCode(err))
	}
	g.audit(ctx, s, "replay", orderID, eventID, detail)
	g.done(w, r, detail, err)
}

// consoleReplayAll replays every given-up delivery (up to 1000).
func (g *Gateway) consoleReplayAll(w http.ResponseWriter, r *http.Request, _ httprouter.Params, s session) {
	ctx := r.Context()
	if g.deps.Replayer == nil {
		g.done(w, r, textMsg{}, domain.Errorf(domain.CodeReplayUnavailable, "replay is not wired in this process"))
		return
	}
	ds, err := g.deps.Store.ListDeliveries(ctx, store.DeliveryFilter{State: domain.DeliveryFailed, Limit: 1000})
	if err != nil {
		g.done(w, r, textMsg{}, err)
		return
	}
	ok, refused := 0, 0
	for _, d := range ds {
		if _, err := g.deps.Replayer.Replay(ctx, d.EventID, d.Endpoint); err != nil {
			refused++
			g.log.Warn("console: replay all: one refused", "event_id", d.EventID, "err", err)
			continue
		}
		ok++
	}
	detail := msg("m_replayed_all", ok, refused)
	g.audit(ctx, s, "replay_all", "", "", detail)
	g.done(w, r, detail, nil)
}
