package sandbox_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/youzan"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

type push struct {
	raw    []byte
	header http.Header
	body   struct {
		ClientID  string `json:"client_id"`
		ID        string `json:"id"`
		KdtID     int64  `json:"kdt_id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		Msg       string `json:"msg"`
		MsgID     string `json:"msg_id"`
		Version   int64  `json:"version"`
		SendCount int    `json:"sendCount"`
		Sign      string `json:"sign"`
		Test      bool   `json:"test"`
		Mode      int    `json:"mode"`
	}
}

// receiver records pushes; fail decides, given the push and how many times
// its msg_id has been seen (from 1), whether to answer without "success".
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	pushes []push
	seen   map[string]int
	fail   func(p push, n int) bool
}

func newReceiver(t *testing.T, fail func(p push, n int) bool) *receiver {
	rc := &receiver{fail: fail, seen: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var p push
		p.raw, p.header = raw, r.Header.Clone()
		if err := json.Unmarshal(raw, &p.body); err != nil {
			t.Errorf("push body is not JSON: %v", err)
		}
		rc.mu.Lock()
		rc.pushes = append(rc.pushes, p)
		rc.seen[p.body.MsgID]++
		n := rc.seen[p.body.MsgID]
		rc.mu.Unlock()
		if rc.fail != nil && rc.fail(p, n) {
			w.Write([]byte(`{"code":0,"msg":"failed"}`))
			return
		}
		w.Write([]byte(`{"code":0,"msg":"success"}`))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) all() []push {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]push(nil), rc.pushes...)
}

func (rc *receiver) count() int { return len(rc.all()) }

func newSandbox(t *testing.T, cfg sandbox.Config) (*sandbox.Sandbox, *httptest.Server) {
	t.Helper()
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); _ = sb.Close() })
	return sb, srv
}

func client(t *testing.T, sb *sandbox.Sandbox, srv *httptest.Server) *youzan.Client {
	sc := sb.Config()
	c, err := youzan.New(youzan.Config{BaseURL: srv.URL, ClientID: sc.ClientID, ClientSecret: sc.ClientSecret, KdtID: sc.KdtID})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verify(t *testing.T, sc sandbox.Config, p push) {
	t.Helper()
	if want := md5Hex(sc.ClientID + p.body.Msg + sc.ClientSecret); p.body.Sign != want {
		t.Errorf("body sign %s, want %s", p.body.Sign, want)
	}
	if want := md5Hex(sc.ClientID + string(p.raw) + sc.ClientSecret); p.header.Get("Event-Sign") != want {
		t.Errorf("Event-Sign %s, want %s", p.header.Get("Event-Sign"), want)
	}
	if p.header.Get("Event-Type") != p.body.Type || p.header.Get("Client-Id") != sc.ClientID {
		t.Errorf("headers %v", p.header)
	}
	if p.body.ClientID != sc.ClientID || p.body.Mode != 1 || p.body.Test || p.body.MsgID == "" || p.body.Version == 0 {
		t.Errorf("body %+v", p.body)
	}
}

func decodeMsg(t *testing.T, p push) map[string]any {
	t.Helper()
	s, err := url.QueryUnescape(p.body.Msg)
	if err != nil {
		t.Fatalf("msg not form-decodable: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoded msg not JSON: %v: %s", err, s)
	}
	return m
}

func TestPayPushesInOrderSigned(t *testing.T) {
	rc := newReceiver(t, nil)
	sb, srv := newSandbox(t, sandbox.Config{})
	sb.SetPushURL(rc.srv.URL)
	c := client(t, sb, srv)
	ctx := context.Background()
	q, err := c.CreateQRCode(ctx, "咖啡 coffee", 1100)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := sb.Pay(ctx, q.ID, sandbox.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Status != "TRADE_SUCCESS" || tr.Payment != 1100 || len(tr.TID) != 24 || tr.TID[0] != 'E' || tr.PayType != "WEIXIN_DAIXIAO" || tr.BuyerID == "" {
		t.Fatalf("trade %+v", tr)
	}
	// The sandbox counts a push only after reading the receiver's reply.
	waitFor(t, 5*time.Second, "3 pushes", func() bool { return rc.count() == 3 && sb.Stats().PushesSent == 3 })
	ps := rc.all()
	wantTypes := []string{"trade_TradeCreate", "trade_TradePaid", "trade_TradeSuccess"}
	wantStatus := []string{"WAIT_BUYER_PAY", "TRADE_PAID", "TRADE_SUCCESS"}
	sc := sb.Config()
	for i, p := range ps {
		if p.body.Type != wantTypes[i] || p.body.Status != wantStatus[i] || p.body.ID != tr.TID || p.body.SendCount != 0 {
			t.Errorf("push %d: %+v", i, p.body)
		}
		if strings.Contains(p.body.Msg, "{") || strings.Contains(p.body.Msg, " ") {
			t.Errorf("msg not fully form-encoded: %s", p.body.Msg)
		}
		verify(t, sc, p)
	}
	paid := decodeMsg(t, ps[1])
	if qi, _ := paid["qr_info"].(map[string]any); qi == nil || qi["qr_id"] != float64(q.ID) {
		t.Errorf("TradePaid msg lacks qr_info: %v", paid["qr_info"])
	}
	raw, _ := url.QueryUnescape(ps[1].body.Msg)
	pt, err := youzan.ParseTrade([]byte(raw))
	if err != nil || pt.QRID != q.ID || pt.Payment != 1100 || pt.TID != tr.TID {
		t.Errorf("ParseTrade on push msg: %+v %v", pt, err)
	}
	succ := decodeMsg(t, ps[2])
	if succ["tid"] != tr.TID || succ["update_time"] == "" || len(succ) != 2 {
		t.Errorf("TradeSuccess msg %v", succ)
	}
	if st := sb.Stats(); st.PushesSent != 3 || st.PushesFailed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFailedPushesRetriedWithSameMsgID(t *testing.T) {
	rc := newReceiver(t, func(p push, n int) bool { return p.body.Type == "trade_TradeCreate" && n <= 2 })
	sb, _ := newSandbox(t, sandbox.Config{RetryScale: 0.001})
	sb.SetPushURL(rc.srv.URL)
	sb.SetKnobs(sandbox.Knobs{SuccessDelay: time.Hour}) // just Create and Paid
	qr := sb.CreateQR("x", 1)
	if _, err := sb.Pay(context.Background(), qr, sandbox.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	// Create fails, its re-push (5s×0.001) fails too, the third try succeeds.
	// Paid goes out after Create's first attempt and succeeds at once.
	waitFor(t, 5*time.Second, "retries", func() bool { return sb.Stats().PushesSent == 2 })
	ps := rc.all()
	byID := map[string][]push{}
	for _, p := range ps {
		byID[p.body.MsgID] = append(byID[p.body.MsgID], p)
		verify(t, sb.Config(), p)
	}
	if len(ps) != 4 || len(byID) != 2 {
		t.Fatalf("want 4 deliveries of 2 messages, got %d of %d", len(ps), len(byID))
	}
	create := byID[ps[0].body.MsgID]
	if ps[3].body.Type != "trade_TradeCreate" {
		t.Errorf("a failing message must not hold back the next one; last delivery was %s", ps[3].body.Type)
	}
	if len(create) != 3 || create[0].body.Type != "trade_TradeCreate" {
		t.Fatalf("create attempts %d", len(create))
	}
	for i, p := range create {
		if p.body.SendCount != i || p.body.Msg != create[0].body.Msg || p.body.Sign != create[0].body.Sign {
			t.Errorf("attempt %d: sendCount %d", i, p.body.SendCount)
		}
	}
	if st := sb.Stats(); st.PushesFailed != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestDynamicQRPayableOnce(t *testing.T) {
	sb, srv := newSandbox(t, sandbox.Config{})
	qr := sb.CreateQR("x", 1)
	ctx := context.Background()
	if _, err := sb.Pay(ctx, qr, sandbox.PayOptions{NoPush: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Pay(ctx, qr, sandbox.PayOptions{}); !errors.Is(err, sandbox.ErrAlreadyPaid) {
		t.Fatalf("second pay: %v", err)
	}
	if _, err := sb.Pay(ctx, 1, sandbox.PayOptions{}); !errors.Is(err, sandbox.ErrUnknownQR) {
		t.Fatalf("unknown QR: %v", err)
	}
	resp, err := http.Post(srv.URL+"/sandbox/qrcodes/"+itoa(qr)+"/pay", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("HTTP second pay: %d", resp.StatusCode)
	}
}

func TestDropPushesSendsNothing(t *testing.T) {
	rc := newReceiver(t, nil)
	sb, _ := newSandbox(t, sandbox.Config{PushURL: rc.srv.URL, Knobs: sandbox.Knobs{DropPushes: true}})
	if _, err := sb.Pay(context.Background(), sb.CreateQR("x", 1), sandbox.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "drops", func() bool { return sb.Stats().PushesDropped == 3 })
	if rc.count() != 0 || sb.Stats().PushesSent != 0 {
		t.Fatalf("pushes sent despite DropPushes: %d", rc.count())
	}
}

func TestReadLag(t *testing.T) {
	sb, srv := newSandbox(t, sandbox.Config{Knobs: sandbox.Knobs{ReadLag: 300 * time.Millisecond}})
	c := client(t, sb, srv)
	start := time.Now()
	tr, err := sb.Pay(context.Background(), sb.CreateQR("x", 1), sandbox.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTrade(context.Background(), tr.TID); !youzan.IsNotFound(err) || !youzan.IsRetryable(err) {
		t.Fatalf("want retryable not-found during read lag, got %v", err)
	}
	var got youzan.Trade
	waitFor(t, 5*time.Second, "trade to become readable", func() bool {
		got, err = c.GetTrade(context.Background(), tr.TID)
		if err != nil && !youzan.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	})
	if time.Since(start) < 300*time.Millisecond || got.Status != "TRADE_SUCCESS" {
		t.Fatalf("readable too early or wrong: %v %+v", time.Since(start), got)
	}
}

func TestSuccessDelayAndClose(t *testing.T) {
	rc := newReceiver(t, nil)
	sb, srv := newSandbox(t, sandbox.Config{PushURL: rc.srv.URL, Knobs: sandbox.Knobs{SuccessDelay: 50 * time.Millisecond}})
	c := client(t, sb, srv)
	ctx := context.Background()
	tr, err := sb.Pay(ctx, sb.CreateQR("x", 1), sandbox.PayOptions{})
	if err != nil || tr.Status != "TRADE_PAID" {
		t.Fatalf("%+v %v", tr, err)
	}
	waitFor(t, 5*time.Second, "TRADE_SUCCESS", func() bool {
		g, err := c.GetTrade(ctx, tr.TID)
		return err == nil && g.Status == "TRADE_SUCCESS"
	})

	qr := sb.CreateQR("y", 2)
	cl, err := sb.CloseQR(ctx, qr)
	if err != nil || cl.Status != "TRADE_CLOSED" || cl.Payment != 0 {
		t.Fatalf("close: %+v %v", cl, err)
	}
	if _, err := sb.Pay(ctx, qr, sandbox.PayOptions{}); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("pay closed: %v", err)
	}
	g, err := c.GetTrade(ctx, cl.TID)
	if err != nil || g.Status != "TRADE_CLOSED" || g.Payment != 0 || g.QRID != qr {
		t.Fatalf("closed trade %+v %v", g, err)
	}
	page, err := c.QRTrades(ctx, youzan.QRTradesQuery{QRID: qr, Status: "TRADE_EXPIRED"})
	if err != nil || page.Total != 1 {
		t.Fatalf("expired listing %+v %v", page, err)
	}
	waitFor(t, 5*time.Second, "close push", func() bool {
		ps := rc.all()
		return len(ps) > 0 && ps[len(ps)-1].body.Type == "trade_TradeClose"
	})
}

func TestLegacyPushStyle(t *testing.T) {
	rc := newReceiver(t, nil)
	sb, _ := newSandbox(t, sandbox.Config{PushURL: rc.srv.URL, PushStyle: "legacy", SignMode: "body"})
	tr, err := sb.Pay(context.Background(), sb.CreateQR("x", 1100), sandbox.PayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "2 legacy pushes", func() bool { return rc.count() == 2 })
	sc := sb.Config()
	for i, want := range []string{"WAIT_BUYER_PAY", "TRADE_SUCCESS"} {
		p := rc.all()[i]
		if p.body.Type != "TRADE_ORDER_STATE" || p.body.Status != want {
			t.Errorf("push %d %+v", i, p.body)
		}
		if p.header.Get("Event-Sign") != "" {
			t.Error("SignMode body must not send Event-Sign")
		}
		if p.body.Sign != md5Hex(sc.ClientID+p.body.Msg+sc.ClientSecret) {
			t.Error("bad body sign")
		}
		if !strings.HasPrefix(p.body.Msg, "%7B%22update_time%22:%22") || !strings.Contains(p.body.Msg, "%20") || !strings.Contains(p.body.Msg, ",%22payment%22:%2211.00%22") {
			t.Errorf("not 2017-style escaping: %s", p.body.Msg)
		}
		m := decodeMsg(t, p)
		if m["tid"] != tr.TID || m["status"] != want {
			t.Errorf("msg %v", m)
		}
	}
}

func TestBuildPush(t *testing.T) {
	sb, _ := newSandbox(t, sandbox.Config{SignMode: "header"})
	tr, err := sb.Pay(context.Background(), sb.CreateQR("x", 1), sandbox.PayOptions{NoPush: true})
	if err != nil {
		t.Fatal(err)
	}
	body, h, err := sb.BuildPush(tr.TID, "trade_TradePaid")
	if err != nil {
		t.Fatal(err)
	}
	sc := sb.Config()
	if h.Get("Event-Sign") != md5Hex(sc.ClientID+string(body)+sc.ClientSecret) || h.Get("Event-Type") != "trade_TradePaid" {
		t.Fatalf("headers %v", h)
	}
	if strings.Contains(string(body), `"sign"`) {
		t.Error("SignMode header must not carry a body sign")
	}
	if _, _, err := sb.BuildPush("E0", "trade_TradePaid"); !errors.Is(err, sandbox.ErrUnknownTID) {
		t.Errorf("unknown tid: %v", err)
	}
	if _, _, err := sb.BuildPush(tr.TID, "nope"); err == nil {
		t.Error("unknown type accepted")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func post(t *testing.T, u, ctype, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(u, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestHTTPSurface(t *testing.T) {
	sb, srv := newSandbox(t, sandbox.Config{})
	sc := sb.Config()
	if len(sc.ClientID) < 18 || len(sc.ClientSecret) != 32 || sc.KdtID == "" {
		t.Fatalf("generated credentials %q %q %q", sc.ClientID, sc.ClientSecret, sc.KdtID)
	}
	tokBody := func(id, secret, grant string) string {
		b, _ := json.Marshal(map[string]any{"client_id": id, "client_secret": secret, "authorize_type": "silent", "grant_id": grant, "refresh": false})
		return string(b)
	}
	code := func(m map[string]any) float64 { f, _ := m["code"].(float64); return f }
	if _, m := post(t, srv.URL+"/auth/token", "application/x-www-form-urlencoded", "client_id=a"); code(m) != 1000 || m["success"] != false {
		t.Errorf("form body: %v", m)
	}
	if _, m := post(t, srv.URL+"/auth/token", "application/json", tokBody(sc.ClientID, "wrong", sc.KdtID)); code(m) != 1000 {
		t.Errorf("wrong secret: %v", m)
	}
	if _, m := post(t, srv.URL+"/auth/token", "application/json", tokBody("nobody", sc.ClientSecret, sc.KdtID)); code(m) != 1103 {
		t.Errorf("unknown client: %v", m)
	}
	if _, m := post(t, srv.URL+"/auth/token", "application/json", tokBody(sc.ClientID, sc.ClientSecret, "1")); code(m) != 1103 {
		t.Errorf("wrong grant: %v", m)
	}
	_, m := post(t, srv.URL+"/auth/token", "application/json", tokBody(sc.ClientID, sc.ClientSecret, sc.KdtID))
	data, _ := m["data"].(map[string]any)
	tok, _ := data["access_token"].(string)
	if code(m) != 200 || m["success"] != true || len(tok) != 32 || data["authority_id"] != sc.KdtID || !strings.Contains(data["scope"].(string), "pay_qrcode") {
		t.Fatalf("token: %v", m)
	}
	if exp := int64(data["expires"].(float64)); exp < time.Now().Add(6*24*time.Hour).UnixMilli() {
		t.Errorf("expires not epoch ms 7 days ahead: %d", exp)
	}
	gw := func(m map[string]any) float64 {
		g, _ := m["gw_err_resp"].(map[string]any)
		f, _ := g["err_code"].(float64)
		return f
	}
	if _, m := post(t, srv.URL+"/api/youzan.nope/1.0.0?access_token="+tok, "application/json", "{}"); gw(m) != 4005 {
		t.Errorf("unknown API: %v", m)
	}
	if _, m := post(t, srv.URL+"/api/youzan.trade.get/4.0.0", "application/json", "{}"); gw(m) != 4201 {
		t.Errorf("no token: %v", m)
	}
	if _, m := post(t, srv.URL+"/api/youzan.trade.get/4.0.0?access_token=feed", "application/json", "{}"); gw(m) != 4203 {
		t.Errorf("unknown token: %v", m)
	}
	if _, m := post(t, srv.URL+"/api/youzan.trade.get/4.0.0?access_token="+tok, "application/json", `{"tid":"E1"}`); code(m) != 5000 || m["message"] != "trade not found" {
		t.Errorf("unknown trade: %v", m)
	}
	st, m := post(t, srv.URL+"/api/youzan.pay.qrcode.create/3.0.0?access_token="+tok, "application/json", `{"qr_name":"n","qr_price":"15","qr_type":"QR_TYPE_DYNAMIC"}`)
	resp, _ := m["response"].(map[string]any)
	qrURL, _ := resp["qr_url"].(string)
	if st != 200 || !strings.HasPrefix(qrURL, srv.URL+"/wxpay/confirmQr?qr_id=") {
		t.Fatalf("create: %v", m)
	}
	page, err := http.Get(qrURL)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(html), "WEIXIN_DAIXIAO") || !strings.Contains(string(html), "ALIPAY") || !strings.Contains(string(html), "¥0.15") {
		t.Errorf("pay page: %s", html)
	}
	qrID := strings.Split(strings.Split(qrURL, "qr_id=")[1], "&")[0]
	st, m = post(t, srv.URL+"/sandbox/qrcodes/"+qrID+"/pay", "application/json", `{"pay_type":"ALIPAY","buyer_id":777}`)
	if st != 200 || m["status"] != "TRADE_SUCCESS" || m["buyer_id"] != "777" || m["pay_type"] != "ALIPAY" || m["payment"] != float64(15) {
		t.Errorf("control pay: %d %v", st, m)
	}
	if st, _ := post(t, srv.URL+"/sandbox/qrcodes/999/close", "application/json", ""); st != 404 {
		t.Errorf("close unknown: %d", st)
	}

	st, m = post(t, srv.URL+"/sandbox/knobs", "application/json", `{"latency":"5ms","read_lag":"1s"}`)
	if st != 200 || m["latency"] != "5ms" || m["read_lag"] != "1s" || sb.Knobs().ReadLag != time.Second {
		t.Errorf("set knobs: %d %v %+v", st, m, sb.Knobs())
	}
	if st, _ := post(t, srv.URL+"/sandbox/knobs", "application/json", `{"latency":"soon"}`); st != 400 {
		t.Errorf("bad knob accepted: %d", st)
	}
	if st, _ := post(t, srv.URL+"/sandbox/tokens/expire", "application/json", ""); st != 200 {
		t.Error("expire")
	}
	if _, m := post(t, srv.URL+"/api/youzan.trade.get/4.0.0?access_token="+tok, "application/json", `{"tid":"E1"}`); gw(m) != 4202 {
		t.Errorf("expired token: %v", m)
	}
}

func TestCloseStopsPendingRetries(t *testing.T) {
	rc := newReceiver(t, func(push, int) bool { return true })
	sb, err := sandbox.New(sandbox.Config{PushURL: rc.srv.URL}) // real 5s schedule
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Pay(context.Background(), sb.CreateQR("x", 1), sandbox.PayOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "first failures", func() bool { return sb.Stats().PushesFailed == 3 })
	done := make(chan struct{})
	go func() { _ = sb.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not stop pending retries")
	}
}
