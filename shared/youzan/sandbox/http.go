package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (s *Sandbox) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/auth/token", s.handleToken)
	m.HandleFunc("/api/", s.handleAPI)
	m.HandleFunc("GET /wxpay/confirmQr", s.handlePayPage)
	m.HandleFunc("POST /sandbox/qrcodes/{qr_id}/pay", s.handlePay)
	m.HandleFunc("POST /sandbox/qrcodes/{qr_id}/close", s.handleClose)
	m.HandleFunc("GET /sandbox/knobs", s.handleGetKnobs)
	m.HandleFunc("POST /sandbox/knobs", s.handleSetKnobs)
	m.HandleFunc("POST /sandbox/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		writeJSON(w, http.StatusOK, map[string]any{"expired": true})
	})
	m.HandleFunc("GET /sandbox/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	s.mux = m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// bizFail is the new-gateway business failure envelope (HTTP 200).
func bizFail(w http.ResponseWriter, code int, msg string, data any) {
	writeJSON(w, http.StatusOK, map[string]any{"success": false, "code": code, "message": msg, "data": data})
}

func gwErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"gw_err_resp": map[string]any{
		"trace_id": "yz7-sandbox-" + randHex(6), "err_code": code, "err_msg": msg,
	}})
}

// faults applies the knobs; it returns true when it has already answered.
func (s *Sandbox) faults(w http.ResponseWriter, r *http.Request, rateLimits bool) bool {
	s.mu.Lock()
	k := s.knobs
	fail := k.ErrorRate > 0 && s.rng.Float64() < k.ErrorRate
	limit := !fail && rateLimits && k.RateLimitRate > 0 && s.rng.Float64() < k.RateLimitRate
	shape := s.rlNext
	if limit {
		s.rlNext = (s.rlNext + 1) % 3
	}
	s.mu.Unlock()
	if !sleepCtx(r.Context(), k.Latency) {
		return true
	}
	switch {
	case fail:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		return true
	case limit:
		switch shape {
		case 0:
			gwErr(w, 4101, "请求太频繁")
		case 1:
			writeJSON(w, http.StatusOK, map[string]any{"msg": "请求被限流", "code": 500100004})
		default:
			bizFail(w, 123000042, "请求被限流", nil)
		}
		return true
	}
	return false
}

type tokenReq struct {
	ClientID      string          `json:"client_id"`
	ClientSecret  string          `json:"client_secret"`
	AuthorizeType string          `json:"authorize_type"`
	GrantID       json.RawMessage `json:"grant_id"`
	Refresh       bool            `json:"refresh"`
}

func (s *Sandbox) handleToken(w http.ResponseWriter, r *http.Request) {
	s.tokenRequests.Add(1)
	if r.Method != http.MethodPost {
		gwErr(w, 4007, "非法的请求")
		return
	}
	if s.faults(w, r, false) {
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		bizFail(w, 1000, fmt.Sprintf("Content type '%s' not supported", r.Header.Get("Content-Type")), nil)
		return
	}
	var req tokenReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		bizFail(w, 1000, "应用信息错误", nil)
		return
	}
	grant := strings.Trim(string(req.GrantID), `" `)
	switch {
	case req.ClientID != s.cfg.ClientID:
		bizFail(w, 1103, "Client 不存在", nil)
		return
	case req.ClientSecret != s.cfg.ClientSecret:
		bizFail(w, 1000, "应用信息错误", nil)
		return
	case req.AuthorizeType != "silent":
		bizFail(w, 1105, "不支持的应用类型", nil)
		return
	case grant != s.cfg.KdtID:
		bizFail(w, 1103, "授权关系不存在", nil)
		return
	}
	now := time.Now()
	s.mu.Lock()
	// refresh:false while the token is valid hands back the same token
	// without extending it, as the real gateway does.
	cur := s.tokens[s.current]
	if req.Refresh || cur == nil || cur.expired || !now.Before(cur.expires) {
		s.current = randHex(16)
		cur = &token{expires: now.Add(s.cfg.TokenTTL)}
		s.tokens[s.current] = cur
	}
	tok, exp := s.current, cur.expires
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true, "code": 200, "message": nil,
		"data": map[string]any{
			"access_token": tok,
			"expires":      exp.UnixMilli(),
			"scope":        "multi_store shop item trade logistics coupon_advanced user pay_qrcode ",
			"authority_id": s.cfg.KdtID,
		},
	})
}

type apiHandler func(w http.ResponseWriter, r *http.Request, p params)

func (s *Sandbox) apis() map[string]apiHandler {
	return map[string]apiHandler{
		"youzan.pay.qrcode.create/3.0.0": s.apiQRCreate,
		"youzan.trade.get/4.0.0":         s.apiTradeGet,
		"youzan.trades.qr.get/3.0.0":     s.apiQRTrades,
	}
}

func (s *Sandbox) handleAPI(w http.ResponseWriter, r *http.Request) {
	s.apiCalls.Add(1)
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		gwErr(w, 4001, "非法请求地址")
		return
	}
	h := s.apis()[parts[0]+"/"+parts[1]]
	if h == nil {
		gwErr(w, 4005, "非法的API")
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		gwErr(w, 4007, "非法的请求")
		return
	}
	if s.faults(w, r, true) {
		return
	}
	tok := r.URL.Query().Get("access_token")
	s.mu.Lock()
	t := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case tok == "":
		gwErr(w, 4201, "非法的请求凭证")
		return
	case t == nil:
		gwErr(w, 4203, "Token 不存在")
		return
	case t.expired || !time.Now().Before(t.expires):
		gwErr(w, 4202, "请求凭证过期")
		return
	}
	p := params{}
	if r.Method == http.MethodGet {
		for k, v := range r.URL.Query() {
			if k != "access_token" && len(v) > 0 {
				p[k] = v[0]
			}
		}
	} else {
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			gwErr(w, 4004, "非法的Content")
			return
		}
	}
	h(w, r, p)
}

// params are decoded with UseNumber; values may be strings or json.Number.
type params map[string]any

func (p params) str(k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

func (p params) int(k string) (int64, bool) {
	s := p.str(k)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func legacyFail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"error_response": map[string]any{"code": code, "msg": msg}})
}

func (s *Sandbox) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Sandbox) apiQRCreate(w http.ResponseWriter, r *http.Request, p params) {
	name := p.str("qr_name")
	price, ok := p.int("qr_price")
	switch {
	case name == "":
		legacyFail(w, 41000, "参数 qr_name 不能为空")
		return
	case !ok || price <= 0:
		legacyFail(w, 41000, "参数 qr_price 必须是正整数(分)")
		return
	case p.str("qr_type") != "QR_TYPE_DYNAMIC":
		legacyFail(w, 41000, "sandbox 只支持 qr_type QR_TYPE_DYNAMIC")
		return
	}
	q := s.createQR(name, price)
	s.mu.Lock()
	s.qrCount++
	asString := s.qrCount%2 == 1
	s.mu.Unlock()
	// Both forms occur in the wild (doc example: string; 2018 capture: number).
	var id any = q.id
	if asString {
		id = strconv.FormatInt(q.id, 10)
	}
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{
		"qr_id":   id,
		"qr_url":  fmt.Sprintf("%s/wxpay/confirmQr?qr_id=%d&kdt_id=%s", s.publicURL(r), q.id, s.cfg.KdtID),
		"qr_code": s.qrImage,
	}})
}

func (s *Sandbox) apiTradeGet(w http.ResponseWriter, r *http.Request, p params) {
	tid := p.str("tid")
	s.mu.Lock()
	t := s.trades[tid]
	lag := s.knobs.ReadLag
	var res map[string]any
	if t != nil && time.Since(t.appeared) >= lag {
		res = s.fullTrade(t, true)
	}
	s.mu.Unlock()
	if res == nil {
		bizFail(w, 5000, "trade not found", map[string]any{})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"response": res})
}

// qrStatus maps a trade onto the trades.qr.get vocabulary.
func qrStatus(t *trade) string {
	switch {
	case t.paid:
		return "TRADE_RECEIVED"
	case t.status == StatusTradeClosed:
		return "TRADE_EXPIRED"
	}
	return "WAIT_RECEIVED"
}

func (s *Sandbox) apiQRTrades(w http.ResponseWriter, r *http.Request, p params) {
	qrID, hasQR := p.int("qr_id")
	status := p.str("status")
	pageNo, _ := p.int("page_no")
	pageSize, _ := p.int("page_size")
	if pageNo <= 0 {
		pageNo = 1
	}
	if pageSize <= 0 {
		pageSize = 20
	}
	s.mu.Lock()
	var list []*trade
	for _, t := range s.trades {
		if hasQR && t.qrID != qrID || status != "" && qrStatus(t) != status {
			continue
		}
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].created.Equal(list[j].created) {
			return list[i].created.After(list[j].created)
		}
		return list[i].tid > list[j].tid
	})
	total := len(list)
	out := []any{}
	for i := (pageNo - 1) * pageSize; i < int64(total) && i < pageNo*pageSize; i++ {
		t := list[i]
		real := "0.00"
		if t.paid {
			real = fmtYuan(t.price)
		}
		out = append(out, map[string]any{
			"tid": t.tid, "qr_id": strconv.FormatInt(t.qrID, 10), "qr_name": t.qrName,
			"qr_price": fmtYuan(t.price), "real_price": real, "status": qrStatus(t),
			"pay_type": qrPayType(t.payType), "payer_nick": "", "outer_tid": "",
			"created_date": fmtTime(t.created), "book_date": fmtTime(t.created), "pay_date": fmtTime(t.paidAt),
			"qr_url": fmt.Sprintf("%s/wxpay/confirmQr?qr_id=%d&kdt_id=%s", s.publicURL(r), t.qrID, s.cfg.KdtID),
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{"qr_trades": out, "total_results": total}})
}

// --- sandbox-only control surface ---

var payPage = template.Must(template.New("pay").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Name}} · yzpay sandbox</title>
<style>body{font-family:sans-serif;max-width:24em;margin:3em auto;text-align:center}
button{display:block;width:100%;margin:.6em 0;padding:.8em;font-size:1.1em;border:0;border-radius:6px;color:#fff}
.wx{background:#07c160}.ali{background:#1677ff}</style></head>
<body><p>yzpay sandbox — no real money moves</p>
<h2>{{.Name}}</h2><h1>¥{{.Price}}</h1>
{{if .Paid}}<p>This QR code has already been paid.</p>{{else if .Closed}}<p>This QR code is closed.</p>{{else}}
<form method="post" action="/sandbox/qrcodes/{{.ID}}/pay"><input type="hidden" name="pay_type" value="WEIXIN_DAIXIAO"><button class="wx">Pay with WeChat</button></form>
<form method="post" action="/sandbox/qrcodes/{{.ID}}/pay"><input type="hidden" name="pay_type" value="ALIPAY"><button class="ali">Pay with Alipay</button></form>
{{end}}</body></html>`))

var donePage = template.Must(template.New("done").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>yzpay sandbox</title></head>
<body style="font-family:sans-serif;max-width:24em;margin:3em auto;text-align:center">
{{if .Err}}<h2>Payment failed</h2><p>{{.Err}}</p>{{else}}<h2>Paid</h2><p>Trade {{.Trade.TID}}: {{.Trade.Status}}</p>{{end}}
</body></html>`))

func (s *Sandbox) handlePayPage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.URL.Query().Get("qr_id"), 10, 64)
	s.mu.Lock()
	q := s.qrs[id]
	var data map[string]any
	if q != nil {
		data = map[string]any{"ID": q.id, "Name": q.name, "Price": fmtYuan(q.price), "Paid": q.paid, "Closed": q.closed}
	}
	s.mu.Unlock()
	if err != nil || q == nil {
		http.Error(w, "unknown QR code", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = payPage.Execute(w, data)
}

func (s *Sandbox) handlePay(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("qr_id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad qr_id"})
		return
	}
	var o PayOptions
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	form := ct == "application/x-www-form-urlencoded"
	if form {
		_ = r.ParseForm()
		o.PayType, o.BuyerID = r.PostForm.Get("pay_type"), r.PostForm.Get("buyer_id")
	} else {
		var body struct {
			PayType string          `json:"pay_type"`
			BuyerID json.RawMessage `json:"buyer_id"`
		}
		raw := new(bytes.Buffer)
		_, _ = raw.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<16))
		if raw.Len() > 0 {
			if err := json.Unmarshal(raw.Bytes(), &body); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad JSON: " + err.Error()})
				return
			}
		}
		o.PayType, o.BuyerID = body.PayType, strings.Trim(string(body.BuyerID), `" `)
	}
	t, err := s.Pay(r.Context(), id, o)
	if form {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err != nil {
			w.WriteHeader(controlStatus(err))
		}
		_ = donePage.Execute(w, map[string]any{"Err": errText(err), "Trade": t})
		return
	}
	s.answerControl(w, t, err)
}

func (s *Sandbox) handleClose(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("qr_id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad qr_id"})
		return
	}
	t, err := s.CloseQR(r.Context(), id)
	s.answerControl(w, t, err)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func controlStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownQR):
		return http.StatusNotFound
	case errors.Is(err, ErrAlreadyPaid), errors.Is(err, ErrClosed):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func (s *Sandbox) answerControl(w http.ResponseWriter, t Trade, err error) {
	if err != nil {
		writeJSON(w, controlStatus(err), map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// knobsJSON is Knobs on the wire, durations as Go duration strings.
type knobsJSON struct {
	Latency       string  `json:"latency"`
	ErrorRate     float64 `json:"error_rate"`
	RateLimitRate float64 `json:"rate_limit_rate"`
	ReadLag       string  `json:"read_lag"`
	DropPushes    bool    `json:"drop_pushes"`
	SuccessDelay  string  `json:"success_delay"`
}

func toJSON(k Knobs) knobsJSON {
	return knobsJSON{
		Latency: k.Latency.String(), ErrorRate: k.ErrorRate, RateLimitRate: k.RateLimitRate,
		ReadLag: k.ReadLag.String(), DropPushes: k.DropPushes, SuccessDelay: k.SuccessDelay.String(),
	}
}

func fromJSON(j knobsJSON) (Knobs, error) {
	var k Knobs
	var err error
	parse := func(name, v string) time.Duration {
		if v == "" || err != nil {
			return 0
		}
		d, e := time.ParseDuration(v)
		if e != nil {
			err = fmt.Errorf("%s: %w", name, e)
		}
		return d
	}
	k.Latency = parse("latency", j.Latency)
	k.ReadLag = parse("read_lag", j.ReadLag)
	k.SuccessDelay = parse("success_delay", j.SuccessDelay)
	k.ErrorRate, k.RateLimitRate, k.DropPushes = j.ErrorRate, j.RateLimitRate, j.DropPushes
	if err == nil && (k.ErrorRate < 0 || k.ErrorRate > 1 || k.RateLimitRate < 0 || k.RateLimitRate > 1) {
		err = errors.New("rates must be within [0, 1]")
	}
	return k, err
}

func (s *Sandbox) handleGetKnobs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, toJSON(s.Knobs()))
}

// handleSetKnobs overlays the posted fields on the current knobs, so a
// client can change one knob without restating the others.
func (s *Sandbox) handleSetKnobs(w http.ResponseWriter, r *http.Request) {
	j := toJSON(s.Knobs())
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&j); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad JSON: " + err.Error()})
		return
	}
	k, err := fromJSON(j)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	s.SetKnobs(k)
	writeJSON(w, http.StatusOK, toJSON(k))
}
