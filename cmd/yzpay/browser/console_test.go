package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/yzpay/yzpay/cmd/yzpay/app"
	"github.com/yzpay/yzpay/shared/store"
)

const adminKey = "console-test-admin-key"

// login opens the console's login form and submits key.
func login(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin"), chromedp.WaitVisible("#password"),
		chromedp.SendKeys("#password", key), chromedp.SendKeys("#name", "li"), chromedp.Click("#login-btn")); err != nil {
		t.Fatal(err)
	}
}

// TestConsole: an operator logs in, finds a paid order by its trade id,
// sees its timeline with the delivery the merchant refused until it was
// given up, replays it and sees the new attempt arrive without a reload;
// the replay is in the audit log; a POST without the CSRF token is refused.
func TestConsole(t *testing.T) {
	ctx := browser(t, "zh-CN", 1280, 900)
	var accept atomic.Bool
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if accept.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "merchant down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(merchant.Close)
	a := startApp(t, map[string]string{"ADMIN_API_KEY": adminKey, "PUSH_API": merchant.URL + "/notify",
		"PUSH_RETRY_SCHEDULE": "50ms"})
	c := create(t, a, map[string]any{"name": "精品咖啡豆 250g", "price": 6800, "order_id": "console-1"})
	create(t, a, map[string]any{"name": "挂耳咖啡 10 包", "price": 3900, "order_id": "console-2"})
	pay(t, a, c.QRID)

	// The delivery is given up after the schedule's one retry.
	var tid, eventID string
	waitFor(t, "the paid order's delivery to be given up", func() bool {
		o, err := a.Store.OrderByID(context.Background(), "console-1")
		if err != nil || o.TID == "" {
			return false
		}
		tid = o.TID
		ds, err := a.Store.ListDeliveries(context.Background(), store.DeliveryFilter{State: "failed"})
		for _, d := range ds {
			if d.OrderID == "console-1" {
				eventID = d.EventID
			}
		}
		return err == nil && eventID != ""
	})

	login(t, ctx, a.URL, adminKey)
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#q")); err != nil {
		t.Fatal(err)
	}
	if httpOnly := eval[string](t, ctx, `document.cookie`); strings.Contains(httpOnly, "console_session") {
		t.Errorf("the session cookie is readable by scripts: %q", httpOnly)
	}
	if err := waitAttr(ctx, "transport", "sse"); err != nil {
		t.Fatalf("the live strip did not open its event stream: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('[data-k=payments_today]').textContent === '1'`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Errorf("the live strip never showed today's payment: %v", err)
	}
	shot(t, ctx, "console-orders")

	// Find the order by its trade id.
	if err := chromedp.Do(ctx, chromedp.SendKeys("#q", tid), chromedp.Submit("#q"), chromedp.WaitVisible("#timeline")); err != nil {
		t.Fatal(err)
	}
	if id := eval[string](t, ctx, `document.getElementById('order-id').textContent`); id != "console-1" {
		t.Fatalf("search for trade id %s opened order %q, want console-1", tid, id)
	}
	sel := `document.querySelector('[data-event="` + eventID + `"]')`
	if st := eval[string](t, ctx, sel+`.dataset.state`); st != "failed" {
		t.Fatalf("timeline shows the delivery as %q, want failed (given up)", st)
	}
	before := eval[string](t, ctx, sel+`.dataset.attempts`)
	if kinds := eval[string](t, ctx, `[...document.querySelectorAll('#timeline .ev')].map(e => e.className).join(' ')`); !strings.Contains(kinds, "k-created") || !strings.Contains(kinds, "k-paid") {
		t.Errorf("timeline lacks the creation or the payment: %s", kinds)
	}

	// Replay it once the merchant is back; the new attempt appears live.
	accept.Store(true)
	eval[bool](t, ctx, `window.__notReloaded = true`)
	if err := chromedp.Do(ctx, chromedp.Click(`[data-event="`+eventID+`"] .replay button`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](sel+` && `+sel+`.dataset.state === 'delivered'`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the replayed delivery never showed as delivered: %v", err)
	}
	after := eval[string](t, ctx, sel+`.dataset.attempts`)
	if !eval[bool](t, ctx, `window.__notReloaded === true`) {
		t.Error("the page reloaded to show the new attempt")
	}
	if after <= before {
		t.Errorf("attempts %s before the replay, %s after; want one more", before, after)
	}
	if audit := eval[string](t, ctx, `(document.querySelector('#audit [data-action=replay]') || {}).textContent || ''`); !strings.Contains(audit, "重新投递") || !strings.Contains(audit, "(li)") || !strings.Contains(audit, "已重新开启 1 条投递") {
		t.Errorf("audit log does not show the replay by this session, in Chinese: %q", audit)
	}
	if f := eval[string](t, ctx, `document.getElementById('flash').textContent`); f != "已重新开启 1 条投递" {
		t.Errorf("flash after the replay on the Chinese page: %q, want 已重新开启 1 条投递", f)
	}
	shot(t, ctx, "console-order")

	// A POST without the CSRF token is refused, and changes nothing.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`fetch('/admin/orders/console-2/close', {method: 'POST', credentials: 'same-origin'}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 {
		t.Errorf("POST without a CSRF token answered %v, want 403", status)
	}
	if o, err := a.Store.OrderByID(context.Background(), "console-2"); err != nil || o.Status != "WAIT_BUYER_PAY" {
		t.Errorf("order after a refused close: %+v %v", o, err)
	}

	// Close the unpaid order from its page: the status flips without a
	// reload, the close button goes, the audit log and flash say so in Chinese.
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/admin/orders/console-2"), chromedp.WaitVisible("#close-btn")); err != nil {
		t.Fatal(err)
	}
	if st := eval[string](t, ctx, `document.getElementById('order-status').textContent`); st != "待支付" {
		t.Errorf("unpaid order's status shown as %q, want 待支付", st)
	}
	eval[bool](t, ctx, `window.__notReloaded = true`)
	if err := chromedp.Do(ctx, chromedp.Click("#close-btn")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('order-status').dataset.status === 'TRADE_CLOSED' && !document.getElementById('close-btn')`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the closed order never showed as closed on its page: %v", err)
	}
	if !eval[bool](t, ctx, `window.__notReloaded === true`) {
		t.Error("the page reloaded to show the closed order")
	}
	if st := eval[string](t, ctx, `document.getElementById('order-status').textContent`); st != "已关闭" {
		t.Errorf("closed order's status shown as %q, want 已关闭", st)
	}
	if audit := eval[string](t, ctx, `(document.querySelector('#audit [data-action=close]') || {}).textContent || ''`); !strings.Contains(audit, "关闭订单") || !strings.Contains(audit, "订单已关闭") || !strings.Contains(audit, "(li)") {
		t.Errorf("audit log lacks the close by this session: %q", audit)
	}
	if f := eval[string](t, ctx, `document.getElementById('flash').textContent`); f != "订单已关闭" {
		t.Errorf("flash after the close: %q, want 订单已关闭", f)
	}
	if o, err := a.Store.OrderByID(context.Background(), "console-2"); err != nil || o.Status != "TRADE_CLOSED" {
		t.Errorf("order after the close: %+v %v", o, err)
	}
	// No English words on the Chinese page (beyond codes, ids and URLs in
	// the timeline's details, which are data).
	if leak := eval[string](t, ctx, englishLeaks); leak != "" {
		t.Errorf("English text on the Chinese order page: %q", leak)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/admin/deliveries?state=failed"), chromedp.WaitVisible("#deliveries")); err != nil {
		t.Fatal(err)
	}
}

// englishLeaks lists the page's visible text nodes, outside data (ids,
// codes, URLs, error excerpts: .mono, .detail, .err, pre, the order id), that
// contain an English word of three letters or more.
const englishLeaks = `(() => {
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let n = w.nextNode(); n; n = w.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('script,style,.mono,.detail,.err,pre,.me,.brand,[title],#order-id')) continue;
    const t = n.textContent.trim();
    if (/[A-Za-z]{3,}/.test(t) && !/^(HTTP|ADMIN_API_KEY|yzpay|ms)$/.test(t)) out.push(t);
  }
  return out.filter(t => !/^yzpay /.test(t) && !/\(ADMIN_API_KEY\)$/.test(t)).join(' | ');
})()`

// TestConsolePausedEndpoint: an endpoint that keeps failing is paused by
// the notifier; the console's paused-endpoints tab shows it with its state,
// last error and pending count, and its resume button (CSRF-protected,
// audited) resumes it, after which the held notification reaches the
// merchant. The page is English here; the order page's screenshot in
// English is taken on the way.
func TestConsolePausedEndpoint(t *testing.T) {
	ctx := browser(t, "en-US", 1280, 900)
	var accept atomic.Bool
	var got atomic.Int32
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if accept.Load() {
			got.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "merchant down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(merchant.Close)
	// Paused after 300 ms of failures; the probe is far off, so only the
	// operator's resume can bring the endpoint back within the test.
	a := startApp(t, map[string]string{"ADMIN_API_KEY": adminKey, "PUSH_API": merchant.URL + "/notify",
		"PUSH_RETRY_SCHEDULE":  "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,1h",
		"ENDPOINT_PAUSE_AFTER": "300ms", "ENDPOINT_PROBE_INTERVAL": "1h"})
	c := create(t, a, map[string]any{"name": "Drip coffee, 10 bags", "price": 3900, "order_id": "paused-1"})
	pay(t, a, c.QRID)
	waitFor(t, "the merchant endpoint to be paused", func() bool {
		hs, err := a.Store.ListEndpointHealth(context.Background())
		return err == nil && len(hs) == 1 && hs[0].State == "paused" && hs[0].Pending > 0
	})

	login(t, ctx, a.URL, adminKey)
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#q"), chromedp.Navigate(a.URL+"/admin/orders/paused-1"), chromedp.WaitVisible("#timeline")); err != nil {
		t.Fatal(err)
	}
	if st := eval[string](t, ctx, `document.getElementById('order-status').textContent`); st != "Completed" {
		t.Errorf("paid order's status shown as %q on the English page, want Completed", st)
	}
	shot(t, ctx, "console-order-en")

	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/admin/deliveries?state=paused"), chromedp.WaitVisible("#endpoints")); err != nil {
		t.Fatal(err)
	}
	row := `document.querySelector('#endpoints tr[data-state]')`
	if st := eval[string](t, ctx, row+`.dataset.state`); st != "paused" {
		t.Fatalf("paused tab shows the endpoint as %q, want paused", st)
	}
	text := eval[string](t, ctx, row+`.textContent`)
	if !strings.Contains(text, "Paused") || !strings.Contains(text, "503") || !strings.Contains(text, merchant.URL) {
		t.Errorf("paused endpoint row lacks its state, last error or URL: %q", text)
	}
	if n := eval[string](t, ctx, row+`.querySelector('td.num').textContent`); n != "1" {
		t.Errorf("paused endpoint shows %s pending, want 1", n)
	}
	// Without the CSRF token the resume is refused and changes nothing.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`fetch('/admin/endpoints/resume', {method: 'POST', credentials: 'same-origin', body: new URLSearchParams({ep: `+row+`.dataset.ep})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 {
		t.Errorf("resume without a CSRF token answered %v, want 403", status)
	}
	if hs, err := a.Store.ListEndpointHealth(context.Background()); err != nil || hs[0].State != "paused" {
		t.Fatalf("endpoint after a refused resume: %+v %v", hs, err)
	}
	shot(t, ctx, "console-paused")

	accept.Store(true)
	if err := chromedp.Do(ctx, chromedp.Click(`#endpoints .resume button`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#resumes [data-action=resume]') !== null`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the resume never showed in the tab's audit list: %v", err)
	}
	if f := eval[string](t, ctx, `document.getElementById('flash').textContent`); !strings.Contains(f, "endpoint resumed") {
		t.Errorf("flash after the resume: %q", f)
	}
	if audit := eval[string](t, ctx, `document.getElementById('resumes').textContent`); !strings.Contains(audit, "(li)") || !strings.Contains(audit, merchant.URL) {
		t.Errorf("resume audit lacks the session or the endpoint: %q", audit)
	}
	waitFor(t, "the held notification to reach the resumed merchant", func() bool {
		hs, err := a.Store.ListEndpointHealth(context.Background())
		return got.Load() > 0 && err == nil && len(hs) == 1 && hs[0].State == "active" && hs[0].Pending == 0
	})
}

// TestConsoleWrongPassword: a wrong key is refused with the login form
// again and no session; repeated failures are rate limited.
func TestConsoleWrongPassword(t *testing.T) {
	ctx := browser(t, "en-US", 1280, 800)
	a := startApp(t, map[string]string{"ADMIN_API_KEY": adminKey})
	login(t, ctx, a.URL, "not-the-key")
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#error")); err != nil {
		t.Fatal(err)
	}
	if msg := eval[string](t, ctx, `document.getElementById('error').textContent`); !strings.Contains(msg, "Wrong key") {
		t.Errorf("error shown %q", msg)
	}
	shot(t, ctx, "console-login-refused")
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/admin/deliveries"), chromedp.WaitVisible("#password")); err != nil {
		t.Fatalf("after a refused login the console is not behind the login form: %v", err)
	}
	for range 5 {
		resp, err := http.PostForm(a.URL+"/admin/login", map[string][]string{"password": {"guess"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Now even the right key is refused from this address for a while.
	resp, err := http.PostForm(a.URL+"/admin/login", map[string][]string{"password": {adminKey}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("login after 6 failures answered %d, want 429", resp.StatusCode)
	}
}

// pay pays qrID in the sandbox, as a buyer's scan would.
func pay(t *testing.T, a *app.App, qrID int64) {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("%s/sandbox/qrcodes/%d/pay", a.URL, qrID), "application/json", strings.NewReader(`{"pay_type":"WEIXIN_DAIXIAO"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sandbox pay: %d", resp.StatusCode)
	}
}

// waitFor waits up to 30 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
