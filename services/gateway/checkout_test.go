package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/yzpay/yzpay/services/gateway"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/merchant"
	"github.com/yzpay/yzpay/shared/natsjs"
)

type checkoutAnswer struct {
	qrAnswer
	CheckoutURL string `json:"checkout_url"`
}

func withReturnHosts(hosts ...string) option {
	return func(c *config.Gateway, _ *gateway.Deps) {
		c.ReturnURLHosts, c.ReturnSecret = hosts, "return-secret"
	}
}

func formHeader() http.Header {
	return http.Header{"Authorization": {"Bearer " + apiKey}, "Content-Type": {"application/x-www-form-urlencoded"}}
}

// A PHP merchant posts a form: the same order, the same validation and
// codes as JSON; price as decimal digits only.
func TestCreateFormEncoded(t *testing.T) {
	e := newEnv(t)
	ok := e.do(http.MethodPost, "/api/payment/qrcode", []byte("name=Coffee+%E5%92%96%E5%95%A1&price=100&order_id=form-1"), formHeader())
	if ok.Status != http.StatusOK {
		t.Fatalf("form create = %d %s", ok.Status, ok.Body)
	}
	a := decode[checkoutAnswer](t, ok)
	if a.OrderID != "form-1" || a.Price != 100 || !strings.HasPrefix(a.CheckoutURL, "/pay/") {
		t.Fatalf("form create answered %+v", a)
	}
	// The same order again as JSON is the same order (idempotent across forms).
	again := decode[checkoutAnswer](t, e.createQR(`{"name":"Coffee 咖啡","price":100,"order_id":"form-1"}`))
	if again.QRID != a.QRID || again.CheckoutURL != a.CheckoutURL {
		t.Fatalf("JSON repeat of a form create = %+v, want qr %d page %s", again, a.QRID, a.CheckoutURL)
	}
	for _, tc := range []struct{ body, code string }{
		{"name=x&price=1.5&order_id=f2", "invalid_price"},
		{"name=x&price=1e3&order_id=f2", "invalid_price"},
		{"name=x&price=%2B5&order_id=f2", "invalid_price"},
		{"name=x&price=0&order_id=f2", "invalid_price"},
		{"name=x&price=10000001&order_id=f2", "invalid_price"},
		{"name=x&order_id=f2", "invalid_price"},
		{"price=5&order_id=f2", "invalid_name"},
		{"name=x&price=5&order_id=bad%20id", "invalid_order_id"},
		{"name=x&price=5&order_id=f2&x=%zz", "bad_body"},
		{"name=x&price=5&order_id=f2&notify_url=https%3A%2F%2Fm.example%2Fn", "url_not_allowed"},
		{"name=x&price=5&order_id=f2&return_url=https%3A%2F%2Fm.example%2Fr", "url_not_allowed"},
	} {
		r := e.do(http.MethodPost, "/api/payment/qrcode", []byte(tc.body), formHeader())
		if r.Status != http.StatusBadRequest || r.errorCode() != tc.code {
			t.Errorf("form %q = %d %s, want 400 %s", tc.body, r.Status, r.Body, tc.code)
		}
	}
	// JSON still requires a number.
	if r := e.createQR(`{"name":"x","price":"100","order_id":"f3"}`); r.errorCode() != "invalid_price" {
		t.Errorf("JSON string price = %d %s, want invalid_price", r.Status, r.Body)
	}
}

func TestCreateReturnURL(t *testing.T) {
	e := newEnv(t, withReturnHosts("shop.example"), func(c *config.Gateway, _ *gateway.Deps) { c.PublicURL = "https://pay.example" })
	r := e.createQR(`{"name":"Tea","price":300,"order_id":"ret-1","return_url":"https://shop.example/done?x=1"}`)
	if r.Status != http.StatusOK {
		t.Fatalf("create with return_url = %d %s", r.Status, r.Body)
	}
	a := decode[checkoutAnswer](t, r)
	tok, ok := strings.CutPrefix(a.CheckoutURL, "https://pay.example/pay/")
	if !ok || len(tok) < 22 || strings.Contains(a.CheckoutURL, "ret-1") {
		t.Fatalf("checkout_url %q: want PUBLIC_URL/pay/<token of ≥128 bits> without the order id", a.CheckoutURL)
	}
	// Same return_url: same page; another (or none): 409 like another price.
	if b := decode[checkoutAnswer](t, e.createQR(`{"name":"Tea","price":300,"order_id":"ret-1","return_url":"https://shop.example/done?x=1"}`)); b.CheckoutURL != a.CheckoutURL {
		t.Errorf("repeat gave page %s, want %s", b.CheckoutURL, a.CheckoutURL)
	}
	for _, body := range []string{
		`{"name":"Tea","price":300,"order_id":"ret-1","return_url":"https://shop.example/other"}`,
		`{"name":"Tea","price":300,"order_id":"ret-1"}`,
	} {
		if r := e.createQR(body); r.Status != http.StatusConflict || r.errorCode() != "order_conflict" {
			t.Errorf("%s = %d %s, want 409 order_conflict", body, r.Status, r.Body)
		}
	}
	for _, u := range []string{"http://shop.example/done", "https://evil.example/done", "https://user@shop.example/", "javascript:alert(1)", "https://shop.example/#frag", "http://127.0.0.1/x"} {
		body, _ := json.Marshal(map[string]any{"name": "x", "price": 1, "order_id": "ret-bad", "return_url": u})
		if r := e.createQR(string(body)); r.Status != http.StatusBadRequest || r.errorCode() != "url_not_allowed" {
			t.Errorf("return_url %q = %d %s, want 400 url_not_allowed", u, r.Status, r.Body)
		}
	}
	if e.orderExists("ret-bad") {
		t.Error("a refused return_url still created the order")
	}
}

// publish announces ev as the tradefetcher would.
func (e *env) publish(ev domain.PaymentEvent) {
	e.t.Helper()
	msg := nats.NewMsg(natsjs.StatusSubject(ev.Status))
	msg.Data = ev.Encode()
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pay(orderID string, qrID int64) domain.PaymentEvent {
	e.t.Helper()
	ch, err := e.store.RecordObservations(context.Background(), []domain.Observation{{
		QRID: qrID, TID: "E2026" + orderID, Status: domain.StatusTradeSuccess, Payment: 300, PayType: "WEIXIN_DAIXIAO",
		PaidAt: time.Now(), ObservedAt: time.Now()}})
	if err != nil || !ch[0].Changed {
		e.t.Fatalf("record payment: %v %+v", err, ch)
	}
	ev := domain.FromOrder(ch[0].Order)
	e.publish(ev)
	return ev
}

type pageState struct {
	State     string `json:"state"`
	Status    string `json:"status"`
	ExpiresAt int64  `json:"expires_at"`
	ReturnURL string `json:"return_url"`
}

// The page and its status endpoint; after payment the status carries the
// return_url with a query signed like the notifications.
func TestCheckoutPageAndStatus(t *testing.T) {
	e := newEnv(t, withReturnHosts("shop.example"))
	a := decode[checkoutAnswer](t, e.createQR(`{"name":"Green <tea>","price":300,"order_id":"page-1","return_url":"https://shop.example/done"}`))
	page := e.do(http.MethodGet, a.CheckoutURL, nil, http.Header{"Accept-Language": {"en-US,en;q=0.9,zh;q=0.5"}})
	if page.Status != http.StatusOK {
		t.Fatalf("page = %d %s", page.Status, page.Body)
	}
	html := string(page.Body)
	for _, want := range []string{"Green &lt;tea&gt;", "3.00", "WeChat Pay", "Alipay", a.QRCode[:60], "Scan with WeChat or Alipay"} {
		if !strings.Contains(html, want) {
			t.Errorf("English page lacks %q", want)
		}
	}
	if strings.Contains(html, "page-1") {
		t.Error("the page shows the order id")
	}
	csp := page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(html, "<script>") || strings.Contains(html, " style=") {
		t.Errorf("CSP %q or inline script/style in the page", csp)
	}
	zh := e.do(http.MethodGet, a.CheckoutURL, nil, nil)
	if !strings.Contains(string(zh.Body), "请使用微信或支付宝扫码支付") {
		t.Error("the default page is not Chinese")
	}
	if r := e.do(http.MethodGet, "/pay/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown token = %d, want 404", r.Status)
	}
	st := decode[pageState](t, e.do(http.MethodGet, a.CheckoutURL+"/status", nil, nil))
	if st.State != "pending" || st.ReturnURL != "" || st.ExpiresAt <= time.Now().UnixMilli() {
		t.Fatalf("status before payment = %+v", st)
	}
	ev := e.pay("page-1", a.QRID)
	st = decode[pageState](t, e.do(http.MethodGet, a.CheckoutURL+"/status", nil, nil))
	if st.State != "paid" {
		t.Fatalf("status after payment = %+v", st)
	}
	u, err := url.Parse(st.ReturnURL)
	if err != nil || u.Host != "shop.example" || u.Path != "/done" {
		t.Fatalf("return_url %q", st.ReturnURL)
	}
	q := u.Query()
	f := merchant.Fields{Time: q.Get("time"), TradeNo: q.Get("trade_no"), OrderID: q.Get("order_id"), Payment: 300, Status: q.Get("status")}
	if q.Get("order_id") != "page-1" || q.Get("status") != "TRADE_SUCCESS" || q.Get("payment") != "300" ||
		f.TradeNo != fmt.Sprintf("%s-%d", ev.TID, ev.QRID) || !merchant.Verify(f, "return-secret", q.Get("sign")) {
		t.Fatalf("return query %v does not verify with the notifications' sign rule", q)
	}
}

func TestCloseOrder(t *testing.T) {
	e := newEnv(t)
	a := decode[checkoutAnswer](t, e.createQR(`{"name":"x","price":300,"order_id":"close-1"}`))
	sub, err := e.js.Conn().SubscribeSync(natsjs.StatusSubjects)
	if err != nil {
		t.Fatal(err)
	}
	r := e.do(http.MethodPost, "/api/payment/orders/close-1/close", nil, bearer(apiKey))
	if r.Status != http.StatusOK {
		t.Fatalf("close = %d %s", r.Status, r.Body)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no TRADE_CLOSED event: %v", err)
	}
	ev, _ := domain.Decode(m.Data)
	if ev.Status != domain.StatusTradeClosed || ev.EventID != "order:close-1:TRADE_CLOSED" {
		t.Fatalf("event %+v, want TRADE_CLOSED with the expiry's event id", ev)
	}
	o, _ := e.store.OrderByID(context.Background(), "close-1")
	if o.Status != domain.StatusTradeClosed {
		t.Fatalf("stored status %s", o.Status)
	}
	if st := decode[pageState](t, e.do(http.MethodGet, a.CheckoutURL+"/status", nil, nil)); st.State != "closed" {
		t.Errorf("page state after close = %+v, want closed", st)
	}
	// Again: still 200 (announced again, deduplicated by event id).
	if r := e.do(http.MethodPost, "/api/payment/orders/close-1/close", nil, bearer(apiKey)); r.Status != http.StatusOK {
		t.Errorf("second close = %d %s", r.Status, r.Body)
	}
	b := decode[checkoutAnswer](t, e.createQR(`{"name":"x","price":300,"order_id":"close-2"}`))
	e.pay("close-2", b.QRID)
	if r := e.do(http.MethodPost, "/api/payment/orders/close-2/close", nil, bearer(apiKey)); r.Status != http.StatusConflict || r.errorCode() != "already_paid" {
		t.Errorf("close of a paid order = %d %s, want 409 already_paid", r.Status, r.Body)
	}
	if r := e.do(http.MethodPost, "/api/payment/orders/nope/close", nil, bearer(apiKey)); r.Status != http.StatusNotFound {
		t.Errorf("close of an unknown order = %d", r.Status)
	}
	if r := e.do(http.MethodPost, "/api/payment/orders/close-1/close", nil, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("close without key = %d", r.Status)
	}
}

// sseClient reads one page's event stream.
type sseClient struct {
	resp *http.Response
	rd   *bufio.Reader
}

func openStream(t testing.TB, client *http.Client, url string) *sseClient {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseClient{resp: resp, rd: bufio.NewReaderSize(resp.Body, 512)}
}

// next returns the next status event's state.
func (c *sseClient) next() (pageState, error) {
	for {
		line, err := c.rd.ReadString('\n')
		if err != nil {
			return pageState{}, err
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var s pageState
			err := json.Unmarshal([]byte(data), &s)
			return s, err
		}
	}
}

// rawStream is one page's event stream read straight off a TCP connection:
// no goroutine and no buffer of its own while it waits, so what the streams
// add to the process is the server's share plus one client socket each.
type rawStream struct {
	c    net.Conn
	head bool // the response head has been read
}

func dialStream(t testing.TB, addr, path string) *rawStream {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	return &rawStream{c: c}
}

// next reads up to the next status frame and returns it; bytes after it
// (at most a keep-alive comment) are dropped. buf is scratch space.
func (s *rawStream) next(buf []byte) (pageState, error) {
	var got []byte
	for {
		if !s.head {
			if i := bytes.Index(got, []byte("\r\n\r\n")); i >= 0 {
				head := string(got[:i])
				if !strings.HasPrefix(head, "HTTP/1.1 200 ") || !strings.Contains(head, "\r\nContent-Type: text/event-stream") {
					return pageState{}, fmt.Errorf("response head %q", head)
				}
				s.head, got = true, got[i+4:]
			}
		}
		if s.head {
			for _, line := range strings.Split(string(got), "\n") {
				if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(string(got), data+"\n") {
					var st pageState
					return st, json.Unmarshal([]byte(data), &st)
				}
			}
		}
		n, err := s.c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return pageState{}, fmt.Errorf("after %q: %w", got, err)
		}
	}
}

// TestCheckoutStreams holds 2,000 open event streams spread over 4 orders,
// measures what each costs the gateway, and checks that one payment reaches
// every page watching its order. The clients are bare TCP connections with
// no goroutine of their own, so the goroutines the streams add are all the
// server's, and their heap is the server's plus one socket each, which is
// measured apart and subtracted.
func TestCheckoutStreams(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	const orders = 4
	e := newEnv(t)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	pages := make([]checkoutAnswer, orders)
	for i := range pages {
		pages[i] = decode[checkoutAnswer](t, e.createQR(fmt.Sprintf(`{"name":"x","price":300,"order_id":"many-%d"}`, i)))
	}
	perSocket := socketHeap(t, n)
	buf := make([]byte, 4096)
	before := settledMem()
	g0 := runtime.NumGoroutine()
	streams := make([]*rawStream, n)
	for i := range streams {
		u, _ := url.Parse(pages[i%orders].CheckoutURL)
		streams[i] = dialStream(t, addr, u.Path+"/events")
		if s, err := streams[i].next(buf); err != nil || s.State != "pending" {
			t.Fatalf("stream %d first state %+v %v", i, s, err)
		}
	}
	t.Cleanup(func() {
		for _, s := range streams {
			s.c.Close()
		}
	})
	// A hijacked connection's background reader ends a moment after the
	// handler took it over; wait for the count to settle (or not).
	perG := func() float64 { return float64(runtime.NumGoroutine()-g0) / float64(n) }
	for deadline := time.Now().Add(10 * time.Second); perG() > 1.1 && time.Now().Before(deadline); {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	after := settledMem()
	goroutines := perG()
	heap := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
	stack := (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n)
	serverHeap := heap - perSocket
	t.Logf("%d open streams, server's share per stream: %.2f goroutines, %.1f KiB heap + %.1f KiB goroutine stack "+
		"(client socket %.2f KiB subtracted)", n, goroutines, serverHeap/1024, stack/1024, perSocket/1024)
	if goroutines > 1.1 {
		t.Errorf("the server spends %.2f goroutines per open page, want at most one", goroutines)
	}
	if serverHeap+stack > 16<<10 {
		t.Errorf("the server spends %.1f KiB per open page: far beyond a few KiB", (serverHeap+stack)/1024)
	}
	start := time.Now()
	e.pay("many-1", pages[1].QRID)
	var (
		wg      sync.WaitGroup
		reached atomic.Int64
		slowest atomic.Int64
	)
	want := 0
	for i, s := range streams {
		if i%orders != 1 {
			continue
		}
		want++
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A page that never hears of it gives up here, and the count
			// shows it.
			_ = s.c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if st, err := s.next(make([]byte, 512)); err == nil && st.State == "paid" {
				reached.Add(1)
				d := int64(time.Since(start))
				for cur := slowest.Load(); d > cur && !slowest.CompareAndSwap(cur, d); cur = slowest.Load() {
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("payment reached %d of %d pages watching the order; the last after %s", reached.Load(), want, time.Duration(slowest.Load()))
	if int(reached.Load()) != want {
		t.Fatalf("payment reached %d of %d watching pages", reached.Load(), want)
	}
	if d := time.Duration(slowest.Load()); d > 5*time.Second {
		t.Errorf("the last page heard of the payment after %s; the issue asks for one second", d)
	}
}

// socketHeap measures the heap one open TCP socket of this process costs
// (n connected pairs, halved): the client's share of a raw stream.
func socketHeap(t *testing.T, n int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make([]net.Conn, 0, 2*n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	before := settledMem()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c, s)
	}
	after := settledMem()
	return max(0, float64(after.HeapAlloc)-float64(before.HeapAlloc)) / float64(2*n)
}

// settledMem reads the memory statistics after two collections: the first
// moves sync.Pool contents to their victim caches, the second frees them,
// so pooled buffers freed earlier do not blur a difference.
func settledMem() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// TestCheckoutEventsOverHTTP2: where the connection cannot be taken over
// (HTTP/2 multiplexes pages on one connection), the stream is written
// through the ResponseWriter and a payment still reaches the page.
func TestCheckoutEventsOverHTTP2(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(e.h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	a := decode[checkoutAnswer](t, e.createQR(`{"name":"x","price":300,"order_id":"h2-1"}`))
	u, _ := url.Parse(a.CheckoutURL)
	s := openStream(t, srv.Client(), srv.URL+u.Path+"/events")
	defer s.resp.Body.Close()
	if s.resp.ProtoMajor != 2 {
		t.Fatalf("stream over %s, want HTTP/2", s.resp.Proto)
	}
	if st, err := s.next(); err != nil || st.State != "pending" {
		t.Fatalf("first state %+v %v", st, err)
	}
	e.pay("h2-1", a.QRID)
	if st, err := s.next(); err != nil || st.State != "paid" {
		t.Fatalf("state after payment %+v %v", st, err)
	}
}

// The page is bound with the QR, by the request that made it: a create whose
// Youzan call failed binds none, so the merchant's retry may carry another
// return_url, and the page is the retry's.
func TestCreateBindsThePageOnlyWithTheQR(t *testing.T) {
	e := newEnv(t, withReturnHosts("shop.example"), func(c *config.Gateway, _ *gateway.Deps) { c.PublicURL = "https://pay.example" })
	e.youzan.setErr(errors.New("connection reset"))
	if r := e.createQR(`{"name":"Tea","price":300,"order_id":"bind-1","return_url":"https://shop.example/a"}`); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("create with Youzan down = %d %s, want 503", r.Status, r.Body)
	}
	e.youzan.setErr(nil)
	r := e.createQR(`{"name":"Tea","price":300,"order_id":"bind-1","return_url":"https://shop.example/b"}`)
	if r.Status != http.StatusOK {
		t.Fatalf("retry with another return_url = %d %s, want 200", r.Status, r.Body)
	}
	a := decode[checkoutAnswer](t, r)
	tok, _ := strings.CutPrefix(a.CheckoutURL, "https://pay.example/pay/")
	c, err := e.store.CheckoutByToken(context.Background(), tok)
	if err != nil || c.OrderID != "bind-1" || c.ReturnURL != "https://shop.example/b" {
		t.Fatalf("page of the retry = %+v, %v; want bind-1's with return_url …/b", c, err)
	}
	o, err := e.store.OrderByID(context.Background(), "bind-1")
	if err != nil || o.QRID != a.QRID || o.QRID == 0 {
		t.Fatalf("order = %+v, %v; want QR %d", o, err, a.QRID)
	}
	if r := e.createQR(`{"name":"Tea","price":300,"order_id":"bind-1","return_url":"https://shop.example/a"}`); r.Status != http.StatusConflict {
		t.Errorf("create with the first return_url after the page = %d %s, want 409", r.Status, r.Body)
	}
}
