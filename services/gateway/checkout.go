package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/loopback"
	"github.com/yzpay/yzpay/shared/merchant"
)

// tokenBytes: 192 random bits, more than the 128 a checkout token needs to
// be unguessable, in 32 URL-safe characters.
const tokenBytes = 24

const maxReturnURL = 2048

func newCheckoutToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validToken is a cheap shape check before the store is asked.
func validToken(s string) bool {
	if len(s) < 22 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkCreateURLs applies README's rules for the per-order URLs of a create
// request. Both must be https (loopback http in sandbox mode) to a host the
// operator listed; the notifier checks notify_url again where it dials.
func (g *Gateway) checkCreateURLs(cr createRequest) error {
	if err := g.checkURL("return_url", "RETURN_URL_HOSTS", cr.returnURL, g.cfg.ReturnURLHosts); err != nil {
		return err
	}
	return g.checkURL("notify_url", "NOTIFY_URL_HOSTS", cr.notifyURL, g.cfg.NotifyURLHosts)
}

func (g *Gateway) checkURL(field, setting, raw string, hosts []string) error {
	if raw == "" {
		return nil
	}
	if len(hosts) == 0 {
		return domain.Errorf(domain.CodeURLNotAllowed, "%s is not allowed: %s is empty", field, setting)
	}
	u, err := url.Parse(raw)
	if err != nil || len(raw) > maxReturnURL || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return domain.Errorf(domain.CodeURLNotAllowed, "%s must be an absolute https URL without user info or fragment, at most 2048 bytes", field)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.cfg.Sandbox && loopback.Host(host):
	default:
		return domain.Errorf(domain.CodeURLNotAllowed, "%s must be https (http only to a loopback host in sandbox mode)", field)
	}
	if !slices.Contains(hosts, host) {
		return domain.Errorf(domain.CodeURLNotAllowed, "%s's host is not in %s", field, setting)
	}
	return nil
}

// bindCheckout gives the order its page, or finds the one it has (see
// checkPage).
func (g *Gateway) bindCheckout(ctx context.Context, page domain.Checkout) (domain.Checkout, error) {
	c, err := g.deps.Store.BindCheckout(ctx, page)
	if err != nil {
		return domain.Checkout{}, fmt.Errorf("bind checkout: %w", err)
	}
	return c, checkPage(c, page)
}

// checkPage compares the page stored for an order with the one asked for.
// The return_url and notify_url count like the price: another one for the
// same order is a conflict, not a silent change of where buyers or
// notifications are sent.
func checkPage(stored, asked domain.Checkout) error {
	if stored.ReturnURL != asked.ReturnURL {
		return domain.Errorf(domain.CodeOrderConflict, "order_id exists with a different return_url")
	}
	if stored.NotifyURL != asked.NotifyURL {
		return domain.Errorf(domain.CodeOrderConflict, "order_id exists with a different notify_url")
	}
	return nil
}

// returnTo is where the page sends a buyer who paid: the merchant's
// return_url with a query signed like the notifications (merchant.Sign over
// time|trade_no|order_id|payment|status), so the merchant's page can trust
// it before the notification arrives. Other query parameters are kept.
func (g *Gateway) returnTo(c domain.Checkout, ev domain.PaymentEvent, now time.Time) string {
	if c.ReturnURL == "" || g.cfg.ReturnSecret == "" {
		return ""
	}
	u, err := url.Parse(c.ReturnURL)
	if err != nil {
		return "" // checked at create; a stored one cannot fail
	}
	f := merchant.Fields{
		Time: strconv.FormatInt(now.Unix(), 10), TradeNo: ev.TID + "-" + strconv.FormatInt(ev.QRID, 10),
		OrderID: ev.OrderID, Payment: ev.Payment, Status: ev.Status,
	}
	q := u.Query()
	for _, k := range []string{"order_id", "status", "time", "trade_no", "payment", "sign"} {
		q.Del(k)
	}
	q.Set("order_id", f.OrderID)
	q.Set("status", f.Status)
	q.Set("time", f.Time)
	q.Set("trade_no", f.TradeNo)
	q.Set("payment", strconv.FormatInt(f.Payment, 10))
	q.Set("sign", merchant.Sign(f, g.cfg.ReturnSecret))
	u.RawQuery = q.Encode()
	return u.String()
}

// errNoPage hides whether a token was malformed or unknown.
var errNoPage = domain.Errorf(domain.CodeNotFound, "no such checkout page")

func (g *Gateway) checkoutByToken(ctx context.Context, token string) (domain.Checkout, error) {
	if !validToken(token) {
		return domain.Checkout{}, errNoPage
	}
	c, err := g.deps.Store.CheckoutByToken(ctx, token)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Checkout{}, errNoPage
	}
	return c, err
}
