package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/yzpay/yzpay/cmd/yzpay/app"
	"github.com/yzpay/yzpay/shared/config"
	"github.com/yzpay/yzpay/shared/merchant"
)

const selfSecret = "browser-test-secret"

// chromium finds Debian's Chromium, or skips (fails under CI=true).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must run the browser tests (apt-get install chromium)")
	}
	t.Skip("chromium not installed: browser tests skipped")
	return ""
}

// browser is a fresh headless Chromium tab with a 360 px wide phone screen
// asking for lang.
func browser(t *testing.T, lang string, width, height int64) context.Context {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("lang", lang), chromedp.Flag("accept-lang", lang), chromedp.WindowSize(int(width), int(height)))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height, chromedp.EmulateScale(2))); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func startApp(t *testing.T, env map[string]string) *app.App {
	base := map[string]string{
		"GATEWAY_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "SANDBOX_SECRET": selfSecret,
		"RETURN_URL_HOSTS": "127.0.0.1",
	}
	for k, v := range env {
		base[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, app.Options{Env: config.FromMap(base), Sandbox: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = a.Stop() })
	return a
}

type created struct {
	QRID        int64  `json:"qr_id"`
	CheckoutURL string `json:"checkout_url"`
}

func create(t *testing.T, a *app.App, fields map[string]any) created {
	b, _ := json.Marshal(fields)
	resp, err := http.Post(a.URL+"/api/payment/qrcode", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c created
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &c) != nil || c.CheckoutURL == "" {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	return c
}

// shot saves a screenshot in artifacts/ and, with YZPAY_DOCS_IMG set, in
// docs/img for the README.
func shot(t *testing.T, ctx context.Context, name string) {
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{"artifacts"}
	if os.Getenv("YZPAY_DOCS_IMG") != "" {
		dirs = append(dirs, filepath.Join("..", "..", "..", "docs", "img"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func waitAttr(ctx context.Context, attr, want string) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`document.body.dataset.%s === %q`, attr, want),
		chromedp.WithPollingTimeout(20*time.Second)))
	return err
}

// TestPayFromPage: a buyer opens the page on a 360 px phone, pays with the
// sandbox button, and sees success without a reload; the page then takes
// them to return_url with a query that verifies under the sandbox's secret
// (SANDBOX_SECRET; in production SELF_SECRET).
func TestPayFromPage(t *testing.T) {
	ctx := browser(t, "zh-CN", 360, 740)
	a := startApp(t, nil)
	returned := make(chan url.Values, 1)
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case returned <- r.URL.Query():
		default:
		}
		fmt.Fprint(w, "<!doctype html><title>shop</title><p id=shop>thanks</p>")
	}))
	t.Cleanup(shop.Close)
	c := create(t, a, map[string]any{"name": "精品咖啡豆 250g", "price": 6800, "order_id": "browser-pay-1",
		"return_url": shop.URL + "/order/done?ref=abc"})

	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+c.CheckoutURL), chromedp.WaitVisible(".msg-pending")); err != nil {
		t.Fatal(err)
	}
	overflow := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`)
	qrRight := eval[float64](t, ctx, `document.getElementById('qr').getBoundingClientRect().right`)
	qrWidth := eval[float64](t, ctx, `document.getElementById('qr').getBoundingClientRect().width`)
	if overflow || qrRight > 360 || qrWidth < 200 {
		t.Errorf("360 px layout: horizontal overflow %v, QR right edge %.0f px, width %.0f px", overflow, qrRight, qrWidth)
	}
	if err := waitAttr(ctx, "transport", "sse"); err != nil {
		t.Fatalf("the page did not open its event stream: %v", err)
	}
	if name := eval[string](t, ctx, `document.getElementById('name').textContent`); name != "精品咖啡豆 250g" {
		t.Errorf("product name %q", name)
	}
	shot(t, ctx, "checkout-pending")

	eval[bool](t, ctx, `window.__notReloaded = true`)
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Click("#sim-wechat"), chromedp.WaitVisible(".msg-paid")); err != nil {
		t.Fatal(err)
	}
	marker := eval[bool](t, ctx, `window.__notReloaded === true`)
	t.Logf("paid shown %s after the click (sandbox → push → tradefetcher → NATS → page)", time.Since(start).Round(time.Millisecond))
	if !marker {
		t.Error("the page reloaded to show the payment")
	}
	// The tick's pop-in, before the picture (the redirect waits 1.5 s).
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getAnimations().every(a => a.playState === 'finished')`,
		chromedp.WithPollingTimeout(time.Second))); err != nil {
		t.Logf("animation still running: %v", err)
	}
	shot(t, ctx, "checkout-paid")

	select {
	case q := <-returned:
		f := merchant.Fields{Time: q.Get("time"), TradeNo: q.Get("trade_no"), OrderID: q.Get("order_id"), Status: q.Get("status")}
		fmt.Sscan(q.Get("payment"), &f.Payment)
		if f.OrderID != "browser-pay-1" || f.Status != "TRADE_SUCCESS" || f.Payment != 6800 || q.Get("ref") != "abc" ||
			!merchant.Verify(f, selfSecret, q.Get("sign")) {
			t.Errorf("return query %v does not verify", q)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the page never sent the buyer to return_url")
	}
}

// TestPollingFallback: with no EventSource (as behind a proxy that breaks
// streams), the page polls the status endpoint and still flips to paid.
func TestPollingFallback(t *testing.T) {
	ctx := browser(t, "en-US", 360, 740)
	a := startApp(t, nil)
	c := create(t, a, map[string]any{"name": "Polling tea", "price": 100, "order_id": "browser-poll-1"})
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: `delete window.EventSource;`})
		return err
	}), chromedp.Navigate(a.URL+c.CheckoutURL), chromedp.WaitVisible(".msg-pending")); err != nil {
		t.Fatal(err)
	}
	if err := waitAttr(ctx, "transport", "poll"); err != nil {
		t.Fatalf("the page did not fall back to polling: %v", err)
	}
	resp, err := http.Post(fmt.Sprintf("%s/sandbox/qrcodes/%d/pay", a.URL, c.QRID), "application/json", strings.NewReader(`{"pay_type":"ALIPAY"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sandbox pay: %v %v", err, resp)
	}
	resp.Body.Close()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(".msg-paid")); err != nil {
		t.Fatal(err)
	}
}

// TestExpiredPage: an order left unpaid past ORDER_TTL shows as expired,
// live and after a reload.
func TestExpiredPage(t *testing.T) {
	ctx := browser(t, "zh-CN", 360, 740)
	a := startApp(t, map[string]string{"ORDER_TTL": "3s", "RECONCILE_INTERVAL": "1s"})
	c := create(t, a, map[string]any{"name": "限时优惠套餐", "price": 1990, "order_id": "browser-exp-1"})
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+c.CheckoutURL), chromedp.WaitVisible(".msg-pending"),
		chromedp.WaitVisible(".msg-expired")); err != nil {
		t.Fatal(err)
	}
	// After the sweeper closed it, a fresh load is expired from the server.
	deadline := time.Now().Add(20 * time.Second)
	for {
		o, err := a.Store.OrderByID(context.Background(), "browser-exp-1")
		if err == nil && o.Status == "TRADE_CLOSED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order not closed after ORDER_TTL: %+v %v", o, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(".msg-expired")); err != nil {
		t.Fatal(err)
	}
	if state := eval[string](t, ctx, `document.body.dataset.state`); state != "expired" {
		t.Errorf("reloaded page state %q, want expired", state)
	}
	shot(t, ctx, "checkout-expired")
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestDesktopLayout: on a 1280 px desktop the page is a centred card, not a
// phone column stretched or stuck to the top: nothing overflows, the QR is
// shown whole at full size and in the card's middle, and the card sits clear
// of the window's edges.
func TestDesktopLayout(t *testing.T) {
	ctx := browser(t, "zh-CN", 1280, 800)
	a := startApp(t, nil)
	c := create(t, a, map[string]any{"name": "精品咖啡豆 250g", "price": 6800, "order_id": "browser-desktop-1"})
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+c.CheckoutURL), chromedp.WaitVisible(".msg-pending")); err != nil {
		t.Fatal(err)
	}
	type box struct{ Left, Right, Top, Bottom, Width, Height float64 }
	rect := func(sel string) box {
		return eval[box](t, ctx, `(() => { const r = document.querySelector(`+strconvQuote(sel)+`).getBoundingClientRect();
			return {Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom, Width: r.width, Height: r.height}; })()`)
	}
	card, qr := rect(".card"), rect("#qr")
	overflow := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`)
	t.Logf("1280 px: card %.0f×%.0f at (%.0f,%.0f), QR %.0f px at x %.0f", card.Width, card.Height, card.Left, card.Top, qr.Width, qr.Left)
	if overflow {
		t.Error("horizontal overflow at 1280 px")
	}
	if card.Width < 360 || card.Width > 900 || card.Left < 100 || 1280-card.Right < 100 {
		t.Errorf("card %.0f px wide from x %.0f to %.0f: want a centred card of 360–900 px", card.Width, card.Left, card.Right)
	}
	if d := (card.Left + card.Right - qr.Left - qr.Right) / 2; d > 240 || d < -240 {
		t.Errorf("QR is %.0f px from the card's middle", d)
	}
	if qr.Width < 220 || qr.Bottom > 800 {
		t.Errorf("QR %.0f px wide, bottom at %.0f px: want it whole (≥ 220 px) within the first 800 px", qr.Width, qr.Bottom)
	}
	if card.Top < 24 || card.Bottom > 800 {
		t.Errorf("card from y %.0f to %.0f: want it off the top edge and whole on an 800 px high screen", card.Top, card.Bottom)
	}
	shot(t, ctx, "checkout-desktop")
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }
