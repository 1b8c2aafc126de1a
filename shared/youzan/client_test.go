package youzan_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yzpay/yzpay/shared/youzan"
	"github.com/yzpay/yzpay/shared/youzan/sandbox"
)

// waitFor polls cond until it holds or the deadline passes.
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

type env struct {
	sb  *sandbox.Sandbox
	srv *httptest.Server
	c   *youzan.Client
	cfg youzan.Config
}

func newEnv(t *testing.T, scfg sandbox.Config, mod func(*youzan.Config)) *env {
	t.Helper()
	sb, err := sandbox.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); _ = sb.Close() })
	sc := sb.Config()
	cfg := youzan.Config{BaseURL: srv.URL, ClientID: sc.ClientID, ClientSecret: sc.ClientSecret, KdtID: sc.KdtID, Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := youzan.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sb: sb, srv: srv, c: c, cfg: cfg}
}

func TestNewRequiresCredentials(t *testing.T) {
	_, err := youzan.New(youzan.Config{ClientSecret: "topsecretvalue"})
	if err == nil {
		t.Fatal("want error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "ClientID") || !strings.Contains(msg, "KdtID") || strings.Contains(msg, "ClientSecret") {
		t.Errorf("message should name exactly the missing fields: %q", msg)
	}
	if strings.Contains(msg, "topsecretvalue") {
		t.Errorf("secret leaked: %q", msg)
	}
	if _, err := youzan.New(youzan.Config{ClientID: "a", KdtID: "1"}); err == nil || !strings.Contains(err.Error(), "ClientSecret") {
		t.Errorf("missing secret: %v", err)
	}
}

func TestFlowCreatePayGetList(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	ctx := context.Background()
	var ids []int64
	for i := 0; i < 2; i++ { // the sandbox alternates qr_id string / number
		q, err := e.c.CreateQRCode(ctx, "测试收款", 1)
		if err != nil {
			t.Fatal(err)
		}
		if q.ID <= 0 || !strings.Contains(q.URL, "/wxpay/confirmQr?qr_id=") || !strings.HasPrefix(q.Code, "data:image/png;base64,") {
			t.Fatalf("bad QR %+v", q)
		}
		ids = append(ids, q.ID)
	}
	paid, err := e.sb.Pay(ctx, ids[1], sandbox.PayOptions{PayType: "ALIPAY", BuyerID: "12345"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := e.c.GetTrade(ctx, paid.TID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TID != paid.TID || tr.QRID != ids[1] || tr.Status != "TRADE_SUCCESS" || tr.Payment != 1 ||
		tr.BuyerID != "12345" || tr.PayType != "ALIPAY" || tr.PaidAt.IsZero() {
		t.Fatalf("trade %+v", tr)
	}
	if d := tr.PaidAt.Sub(paid.PaidAt); d > time.Second || d < -time.Second {
		t.Errorf("PaidAt %v vs %v: zone handling off", tr.PaidAt, paid.PaidAt)
	}
	page, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{QRID: ids[1], Status: "TRADE_RECEIVED"})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 || len(page.Trades) != 1 || page.Trades[0].TID != paid.TID || page.Trades[0].RealPrice != 1 ||
		page.Trades[0].QRID != ids[1] || page.Trades[0].CreatedAt.IsZero() {
		t.Fatalf("page %+v", page)
	}
	page, err = e.c.QRTrades(ctx, youzan.QRTradesQuery{QRID: ids[0], Status: "TRADE_RECEIVED"})
	if err != nil || page.Total != 0 || len(page.Trades) != 0 {
		t.Fatalf("unpaid QR: %+v %v", page, err)
	}
	if _, err := e.c.GetTrade(ctx, "E00000000000000000000000"); !youzan.IsNotFound(err) || !youzan.IsRetryable(err) {
		t.Fatalf("unknown tid: %v", err)
	}
}

func TestTokenSingleFlight(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.c.QRTrades(context.Background(), youzan.QRTradesQuery{QRID: 1})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := e.sb.Stats(); st.TokenRequests != 1 || st.APICalls != 50 {
		t.Fatalf("stats %+v: want 1 token request for 50 calls", st)
	}
}

func TestTokenForcedExpiryRenewsOnce(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	ctx := context.Background()
	if _, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{}); err != nil {
		t.Fatal(err)
	}
	e.sb.ExpireTokens()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st := e.sb.Stats(); st.TokenRequests != 2 {
		t.Fatalf("want exactly one renewal, stats %+v", st)
	}
}

// Token requests are observed as "auth/token", so a token that cannot be
// had shows in metrics apart from the calls it makes fail.
func TestTokenRequestsObserved(t *testing.T) {
	var mu sync.Mutex
	observed := map[string]int{}
	record := func(c *youzan.Config) {
		c.Observe = func(api, result string, d time.Duration) {
			mu.Lock()
			observed[api+" "+result]++
			mu.Unlock()
		}
	}
	e := newEnv(t, sandbox.Config{}, record)
	if _, err := e.c.QRTrades(context.Background(), youzan.QRTradesQuery{}); err != nil {
		t.Fatal(err)
	}
	bad := newEnv(t, sandbox.Config{}, func(c *youzan.Config) {
		record(c)
		c.ClientSecret = "not-the-secret"
	})
	if _, err := bad.c.QRTrades(context.Background(), youzan.QRTradesQuery{}); kindOf(err) != youzan.Auth {
		t.Fatalf("call with a wrong secret: %v, want an Auth error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"auth/token ok": 1, "auth/token error": 1, "youzan.trades.qr.get ok": 1, "youzan.trades.qr.get error": 1}
	for k, n := range want {
		if observed[k] != n {
			t.Errorf("observed %v, want %v", observed, want)
			break
		}
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	e := newEnv(t, sandbox.Config{TokenTTL: 1500 * time.Millisecond}, func(c *youzan.Config) { c.RenewBefore = time.Second })
	ctx := context.Background()
	waitFor(t, 5*time.Second, "proactive renewal", func() bool {
		if _, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{}); err != nil {
			t.Fatalf("call failed around renewal: %v", err)
		}
		return e.sb.Stats().TokenRequests == 2
	})
	// The renewed token must be used straight away, without another fetch.
	if _, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{}); err != nil {
		t.Fatal(err)
	}
	if st := e.sb.Stats(); st.TokenRequests != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func kindOf(err error) youzan.Kind {
	var ye *youzan.Error
	if errors.As(err, &ye) {
		return ye.Kind
	}
	return 0
}

func TestSandboxErrorClasses(t *testing.T) {
	var mu sync.Mutex
	observed := map[string]int{}
	e := newEnv(t, sandbox.Config{}, func(c *youzan.Config) {
		c.Timeout = 150 * time.Millisecond
		c.Observe = func(api, result string, d time.Duration) {
			mu.Lock()
			observed[api+" "+result]++
			mu.Unlock()
		}
	})
	ctx := context.Background()
	if _, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{}); err != nil {
		t.Fatal(err)
	}

	e.sb.SetKnobs(sandbox.Knobs{RateLimitRate: 1})
	codes := map[int]bool{}
	for i := 0; i < 3; i++ {
		_, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{})
		var ye *youzan.Error
		if !errors.As(err, &ye) || ye.Kind != youzan.RateLimited || !youzan.IsRetryable(err) {
			t.Fatalf("rate limit shape %d: %v", i, err)
		}
		codes[ye.Code] = true
	}
	if !codes[4101] || !codes[500100004] || !codes[123000042] {
		t.Errorf("want the three rate-limit shapes, got codes %v", codes)
	}

	e.sb.SetKnobs(sandbox.Knobs{ErrorRate: 1})
	_, err := e.c.QRTrades(ctx, youzan.QRTradesQuery{})
	var ye *youzan.Error
	if !errors.As(err, &ye) || ye.Kind != youzan.Server || ye.HTTPStatus != 502 || !youzan.IsRetryable(err) {
		t.Fatalf("502: %v", err)
	}

	e.sb.SetKnobs(sandbox.Knobs{Latency: time.Second})
	start := time.Now()
	_, err = e.c.QRTrades(ctx, youzan.QRTradesQuery{})
	if kindOf(err) != youzan.Timeout || !youzan.IsRetryable(err) {
		t.Fatalf("timeout: %v", err)
	}
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Errorf("per-call timeout not applied: took %v", el)
	}
	e.sb.SetKnobs(sandbox.Knobs{})

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.c.QRTrades(cctx, youzan.QRTradesQuery{}); !errors.Is(err, context.Canceled) || youzan.IsRetryable(err) {
		t.Fatalf("cancelled: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if observed["youzan.trades.qr.get ok"] != 1 || observed["youzan.trades.qr.get retryable"] != 5 || observed["youzan.trades.qr.get error"] != 1 {
		t.Errorf("observed %v", observed)
	}
}

// canned serves /auth/token with a fixed token and answers every API call
// with the given status and body.
type canned struct {
	srv           *httptest.Server
	status        atomic.Int64
	body          atomic.Value // string
	tokenRequests atomic.Int64
	apiCalls      atomic.Int64
	lastRefresh   atomic.Bool
}

const (
	cannedToken  = "0123456789abcdef0123456789abcdef"
	cannedSecret = "s3cr3t-value-never-in-output"
)

func newCanned(t *testing.T) *canned {
	c := &canned{}
	c.status.Store(200)
	c.body.Store(`{}`)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/token" {
			c.tokenRequests.Add(1)
			b, _ := io.ReadAll(r.Body)
			c.lastRefresh.Store(bytes.Contains(b, []byte(`"refresh":true`)))
			exp := time.Now().Add(7 * 24 * time.Hour).UnixMilli()
			w.Write([]byte(`{"success":true,"code":200,"message":null,"data":{"access_token":"` + cannedToken +
				`","expires":` + strconv.FormatInt(exp, 10) + `,"scope":"trade pay_qrcode ","authority_id":"42"}}`))
			return
		}
		c.apiCalls.Add(1)
		if r.URL.Query().Get("access_token") != cannedToken {
			w.Write([]byte(`{"gw_err_resp":{"err_code":4203,"err_msg":"Token 不存在"}}`))
			return
		}
		w.WriteHeader(int(c.status.Load()))
		w.Write([]byte(c.body.Load().(string)))
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *canned) client(t *testing.T, logs io.Writer) *youzan.Client {
	cfg := youzan.Config{BaseURL: c.srv.URL, ClientID: "cid", ClientSecret: cannedSecret, KdtID: "42", Timeout: time.Second}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cl, err := youzan.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestEnvelopeClassification(t *testing.T) {
	c := newCanned(t)
	cl := c.client(t, nil)
	cases := []struct {
		name      string
		status    int
		body      string
		kind      youzan.Kind
		code      int
		retryable bool
	}{
		{"gw 4101", 200, `{"gw_err_resp":{"trace_id":"yz7-1","err_code":4101,"err_msg":"请求太频繁"}}`, youzan.RateLimited, 4101, true},
		{"msg/code rate limit", 200, `{"msg":"请求被限流","code":500100004}`, youzan.RateLimited, 500100004, true},
		{"business rate limit", 200, `{"code":123000042,"success":false,"message":"请求被限流"}`, youzan.RateLimited, 123000042, true},
		{"4204", 200, `{"gw_err_resp":{"err_code":4204,"err_msg":"无权限访问"}}`, youzan.Forbidden, 4204, false},
		{"4005", 200, `{"gw_err_resp":{"err_code":4005,"err_message":"非法的API"}}`, youzan.BadRequest, 4005, false},
		{"4010", 200, `{"gw_err_resp":{"err_code":"4010","err_msg":"参数类型不匹配"}}`, youzan.BadRequest, 4010, false},
		{"5001", 200, `{"gw_err_resp":{"err_code":5001,"err_msg":"系统异常"}}`, youzan.BadRequest, 5001, false},
		{"http 500", 500, `oops`, youzan.Server, 0, true},
		{"http 503 with json", 503, `{"success":true,"code":200,"data":{}}`, youzan.Server, 0, true},
		{"unparseable", 200, `<html>hi</html>`, youzan.Protocol, 0, false},
		{"unrecognised", 200, `{"foo":1}`, youzan.Protocol, 0, false},
		{"legacy error", 200, `{"error_response":{"msg":"店铺ID与网点编号不相符","code":50000}}`, youzan.Business, 50000, false},
		{"legacy bad param", 200, `{"error_response":{"msg":"参数错误","code":41000}}`, youzan.BadRequest, 41000, false},
		{"trade not found", 200, `{"trace_id":"x","code":5000,"success":false,"message":"trade not found","data":{"full_order_info":null}}`, youzan.NotFound, 5000, true},
		{"empty data", 200, `{"code":200,"success":true,"message":"successful","data":{}}`, youzan.NotFound, 5000, true},
		{"empty response", 200, `{"response":{}}`, youzan.NotFound, 5000, true},
		{"other business", 200, `{"code":101300001,"success":false,"message":"业务异常"}`, youzan.Business, 101300001, false},
		{"is_success false", 200, `{"code":200,"success":true,"data":{"is_success":false}}`, youzan.Business, 0, false},
		{"error_response beats response", 200, `{"error_response":{"msg":"x","code":50000},"response":{"trade":{"tid":"E1"}}}`, youzan.Business, 50000, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.status.Store(int64(tc.status))
			c.body.Store(tc.body)
			_, err := cl.GetTrade(context.Background(), "E1")
			var ye *youzan.Error
			if !errors.As(err, &ye) {
				t.Fatalf("want *youzan.Error, got %v", err)
			}
			if ye.Kind != tc.kind || ye.Code != tc.code || ye.Retryable() != tc.retryable || youzan.IsRetryable(err) != tc.retryable {
				t.Fatalf("got kind %v code %d retryable %v (%v)", ye.Kind, ye.Code, ye.Retryable(), err)
			}
			if ye.API != "youzan.trade.get" {
				t.Errorf("API %q", ye.API)
			}
		})
	}
}

func TestSuccessEnvelopes(t *testing.T) {
	c := newCanned(t)
	cl := c.client(t, nil)
	cases := []struct {
		name string
		body string
		want youzan.Trade
	}{
		{"4.0.0 response + qr_info number", `{"response":{"full_order_info":{"order_info":{"tid":"E1","status":"TRADE_SUCCESS","pay_type_str":"WEIXIN_DAIXIAO","pay_time":"2018-09-17 18:20:01","order_tags":{"is_payed":true}},"buyer_info":{"buyer_id":0,"fans_id":5678},"pay_info":{"payment":"0.01"}},"qr_info":{"qr_id":8286057,"qr_pay_id":1}}}`,
			youzan.Trade{TID: "E1", Status: "TRADE_SUCCESS", QRID: 8286057, Payment: 1, BuyerID: "5678", PayType: "WEIXIN_DAIXIAO", PaidAt: time.Date(2018, 9, 17, 10, 20, 1, 0, time.UTC)}},
		{"4.0.1 data + qrcode_info string, id above 2^53", `{"trace_id":"t","code":200,"success":true,"message":"successful","data":{"full_order_info":{"order_info":{"tid":"E2","status":"TRADE_PAID","pay_type_str":"WXPAY"},"buyer_info":{"buyer_id":9007199254740993},"pay_info":{"payment":"260.00"},"qrcode_info":{"qrcode_id":"12379180"}}}}`,
			youzan.Trade{TID: "E2", Status: "TRADE_PAID", QRID: 12379180, Payment: 26000, BuyerID: "9007199254740993", PayType: "WXPAY"}},
		{"3.0.0 trade.qr_id string, payment number", `{"response":{"trade":{"tid":"E3","status":"TRADE_BUYER_SIGNED","qr_id":"9007199254740993","payment":11.5,"pay_type":"ALIPAY","fans_info":{"buyer_id":0,"fans_weixin_openid":"oABC","fans_id":1}}}}`,
			youzan.Trade{TID: "E3", Status: "TRADE_BUYER_SIGNED", QRID: 9007199254740993, Payment: 1150, BuyerID: "oABC", PayType: "ALIPAY"}},
		{"wait buyer pay has no payment", `{"response":{"full_order_info":{"order_info":{"tid":"E4","status":"WAIT_BUYER_PAY","order_tags":{"is_payed":false}},"pay_info":{"payment":"5.00"}},"qr_info":{"qr_id":"7"}}}`,
			youzan.Trade{TID: "E4", Status: "WAIT_BUYER_PAY", QRID: 7}},
		{"closed unpaid", `{"response":{"full_order_info":{"order_info":{"tid":"E5","status":"TRADE_CLOSED","order_tags":{"is_payed":false}},"pay_info":{"payment":"5.00"}}}}`,
			youzan.Trade{TID: "E5", Status: "TRADE_CLOSED"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.body.Store(tc.body)
			got, err := cl.GetTrade(context.Background(), "E")
			if err != nil {
				t.Fatal(err)
			}
			if !got.PaidAt.Equal(tc.want.PaidAt) {
				t.Errorf("PaidAt %v want %v", got.PaidAt, tc.want.PaidAt)
			}
			got.PaidAt, tc.want.PaidAt = time.Time{}, time.Time{}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}

	c.body.Store(`{"success":true,"code":200,"data":{"qr_id":19707,"qr_url":"u","qr_code":"data:image/png;base64,AA"}}`)
	q, err := cl.CreateQRCode(context.Background(), "x", 100)
	if err != nil || q.ID != 19707 {
		t.Fatalf("data envelope qr create: %+v %v", q, err)
	}
	c.body.Store(`{"response":{"qr_trades":[{"tid":"E9","qr_id":12379180,"real_price":260,"status":"TRADE_RECEIVED","created_date":"2019-06-25 16:50:51"}],"total_results":{"total":"16"}}}`)
	page, err := cl.QRTrades(context.Background(), youzan.QRTradesQuery{QRID: 12379180})
	if err != nil || page.Total != 16 || page.Trades[0].RealPrice != 26000 || page.Trades[0].QRID != 12379180 {
		t.Fatalf("qr trades: %+v %v", page, err)
	}
}

func TestTokenRejectedRenewsOnceThenGivesUp(t *testing.T) {
	c := newCanned(t)
	cl := c.client(t, nil)
	c.body.Store(`{"gw_err_resp":{"err_code":4202,"err_msg":"请求凭证过期"}}`)
	_, err := cl.GetTrade(context.Background(), "E1")
	if kindOf(err) != youzan.Token || !youzan.IsRetryable(err) {
		t.Fatalf("want Token error, got %v", err)
	}
	if c.tokenRequests.Load() != 2 || c.apiCalls.Load() != 2 {
		t.Fatalf("want 2 token requests and 2 calls, got %d and %d", c.tokenRequests.Load(), c.apiCalls.Load())
	}
	if !c.lastRefresh.Load() {
		t.Error("renewal of a rejected token should ask for a fresh one (refresh:true)")
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	var logs bytes.Buffer
	var errs []string
	check := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	c := newCanned(t)
	cl := c.client(t, &logs)
	ctx := context.Background()

	for _, body := range []string{
		`{"gw_err_resp":{"err_code":4201,"err_msg":"非法的请求凭证"}}`,
		`{"error_response":{"msg":"参数 token 无效","code":40010}}`,
		`garbage`,
		`{"code":5000,"success":false,"message":"trade not found"}`,
	} {
		c.body.Store(body)
		_, err := cl.GetTrade(ctx, "E1")
		check(err)
	}

	// A transport failure: *url.Error would print the URL with the token.
	hijack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/token" {
			c.srv.Config.Handler.ServeHTTP(w, r)
			return
		}
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer hijack.Close()
	hcl, _ := youzan.New(youzan.Config{BaseURL: hijack.URL, ClientID: "cid", ClientSecret: cannedSecret, KdtID: "42",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	_, err := hcl.GetTrade(ctx, "E1")
	if kindOf(err) != youzan.Network || !youzan.IsRetryable(err) {
		t.Errorf("want Network, got %v", err)
	}
	check(err)

	// A slow server: timeouts also come wrapped in *url.Error.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/token" {
			c.srv.Config.Handler.ServeHTTP(w, r)
			return
		}
		// Drain the body: only then does net/http notice the client leaving.
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	scl, _ := youzan.New(youzan.Config{BaseURL: slow.URL, ClientID: "cid", ClientSecret: cannedSecret, KdtID: "42", Timeout: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	_, err = scl.GetTrade(ctx, "E1")
	if kindOf(err) != youzan.Timeout {
		t.Errorf("want Timeout, got %v", err)
	}
	check(err)

	// Credentials refused by a real-protocol token endpoint.
	sb, _ := sandbox.New(sandbox.Config{})
	defer sb.Close()
	ssrv := httptest.NewServer(sb)
	defer ssrv.Close()
	bad, _ := youzan.New(youzan.Config{BaseURL: ssrv.URL, ClientID: sb.Config().ClientID, ClientSecret: cannedSecret, KdtID: sb.Config().KdtID,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	_, err = bad.GetTrade(ctx, "E1")
	if kindOf(err) != youzan.Auth || youzan.IsRetryable(err) {
		t.Errorf("want non-retryable Auth, got %v", err)
	}
	check(err)

	// Nothing listening at all.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	dead, _ := youzan.New(youzan.Config{BaseURL: "http://" + addr, ClientID: "cid", ClientSecret: cannedSecret, KdtID: "42"})
	_, err = dead.GetTrade(ctx, "E1")
	if kindOf(err) != youzan.Network {
		t.Errorf("want Network, got %v", err)
	}
	check(err)

	if len(errs) != 8 {
		t.Fatalf("expected 8 errors, got %d: %q", len(errs), errs)
	}
	if logs.Len() == 0 {
		t.Fatal("expected some log output")
	}
	for _, s := range append(errs, logs.String()) {
		if strings.Contains(s, cannedSecret) || strings.Contains(s, cannedToken) {
			t.Errorf("secret or token leaked in %q", s)
		}
	}
}

// The token request carries the app secret, so a plain-http base is refused
// unless it is the loopback sandbox, and a redirect is never followed.
func TestClientRefusesPlainHTTPAndRedirects(t *testing.T) {
	for base, ok := range map[string]bool{
		"http://open.youzanyun.example": false, "http://10.0.0.5:8080": false,
		"https://open.youzanyun.example": true, "http://127.0.0.1:8090": true, "http://localhost:1": true, "http://[::1]:2": true,
	} {
		_, err := youzan.New(youzan.Config{BaseURL: base, ClientID: "id", ClientSecret: "s", KdtID: "1"})
		if (err == nil) != ok {
			t.Errorf("New(%s): err = %v, want ok=%v", base, err, ok)
		}
	}
	var followed atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer elsewhere.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	c, err := youzan.New(youzan.Config{BaseURL: redirecting.URL, ClientID: "id", ClientSecret: "topsecret", KdtID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetTrade(context.Background(), "E20261126104817023201920")
	var ye *youzan.Error
	if !errors.As(err, &ye) || ye.HTTPStatus != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want a redirect error", err)
	}
	if followed.Load() != 0 {
		t.Errorf("the client followed a redirect %d times, sending the secret elsewhere", followed.Load())
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error shows the secret: %v", err)
	}
}

type listedTrades struct {
	page youzan.QRTradesPage
	err  error
	got  youzan.QRTradesQuery
}

func (l *listedTrades) QRTrades(_ context.Context, q youzan.QRTradesQuery) (youzan.QRTradesPage, error) {
	l.got = q
	return l.page, l.err
}

// PaidTIDs asks for the QR's paid trades and keeps those of that QR only:
// a trade listed under another QR must never be fed into this order.
func TestPaidTIDs(t *testing.T) {
	l := &listedTrades{page: youzan.QRTradesPage{Trades: []youzan.QRTrade{
		{TID: "E1", QRID: 7}, {TID: "E2", QRID: 8}, {TID: "", QRID: 7}, {TID: "E3"},
	}}}
	got, err := youzan.PaidTIDs(context.Background(), l, 7)
	if err != nil || !slices.Equal(got, []string{"E1", "E3"}) {
		t.Errorf("PaidTIDs = %v, %v; want [E1 E3]", got, err)
	}
	if l.got.QRID != 7 || l.got.Status != "TRADE_RECEIVED" {
		t.Errorf("asked Youzan for %+v; want QR 7's TRADE_RECEIVED trades", l.got)
	}
	l.err = errors.New("youzan down")
	if got, err := youzan.PaidTIDs(context.Background(), l, 7); err == nil || got != nil {
		t.Errorf("PaidTIDs with Youzan failing = %v, %v; want the error", got, err)
	}
}
